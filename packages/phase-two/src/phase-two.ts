import { join } from 'node:path';
import { z } from 'zod';
import { GraftError, MAX_SEED, Rng, defineStage } from '@graft/core';
import { MODEL_DIR, TRAINING_LIMITS, runFingerprint, writeTrainingMetrics } from '@graft/phase-one';
import type { PhaseOneMetricsFile } from '@graft/phase-one';
import { readSplit, readSplitData } from '@graft/split';

export const phaseTwoParams = z
  .strictObject({
    epochs: z.number().int().min(1).max(TRAINING_LIMITS.epochs).default(8),
    batchesPerEpoch: z
      .number()
      .int()
      .min(1)
      .max(TRAINING_LIMITS.batchesPerEpoch)
      .default(550)
      .describe(`Batches per epoch, each epoch a fresh shuffle (TF next_batch); batchesPerEpoch × batchSize at most ${TRAINING_LIMITS.rowsPerEpoch}`),
    batchSize: z.number().int().min(1).max(TRAINING_LIMITS.batchSize).default(100),
    learningRate: z.number().positive().max(TRAINING_LIMITS.learningRate).default(1e-4).describe('Adam learning rate (fresh optimizer state)'),
    l2: z.number().min(0).max(TRAINING_LIMITS.l2).default(0.001).describe('Weight of l2(head kernel) in the loss (all three kernels when trainBase)'),
    keepProb: z.number().gt(0).max(1).default(0.7).describe('Dropout keep probability, active in the frozen base too'),
    evalEvery: z.number().int().min(1).max(TRAINING_LIMITS.evalEvery).default(50),
    seed: z.number().int().min(0).max(MAX_SEED).default(0).describe('Dropout masks and shuffling'),
    trainBase: z.boolean().default(false).describe('Train every layer instead of the head only (the full fine-tuning baseline)'),
  })
  .superRefine(({ batchesPerEpoch, batchSize }, ctx) => {
    // Each over its own bound is reported once, by that bound.
    if (batchesPerEpoch > TRAINING_LIMITS.batchesPerEpoch || batchSize > TRAINING_LIMITS.batchSize) return;
    if (batchesPerEpoch * batchSize > TRAINING_LIMITS.rowsPerEpoch) {
      ctx.addIssue({
        code: 'custom',
        path: ['batchesPerEpoch'],
        message: `batchesPerEpoch × batchSize is ${batchesPerEpoch} × ${batchSize} = ${batchesPerEpoch * batchSize} rows per epoch, more than the ${TRAINING_LIMITS.rowsPerEpoch} allowed (each epoch's shuffle order is drawn up front); lower either`,
      });
    }
  });
export type PhaseTwoParams = z.output<typeof phaseTwoParams>;

export interface PhaseTwoMetricsFile extends Omit<PhaseOneMetricsFile, 'dataset'> {
  trainBase: boolean;
  heldOut: number[];
  /** Test accuracy on the held-out (new) classes only. */
  newClassTestAccuracy: number | null;
  /** Validation accuracy of the input model, before any phase-two step. */
  valAccuracyBefore: number;
}

const NAME = 'phase-two';
// 2: fused wasm Adam with the L2 gradient added in the update (float32 rounding differs from 1).
// 3: metrics.json and manifest metrics call the held-out classes' test accuracy
//    newClassTestAccuracy (was newClassAccuracy), as transplant does, so compare lines them up.
const VERSION = '3';

export const phaseTwoStage = defineStage({
  name: NAME,
  version: VERSION,
  description: 'Fine-tunes the grafted head (or every layer: trainBase) on every class.',
  params: phaseTwoParams,
  inputs: ['model', 'data'],
  async run(ctx) {
    const { params, logger } = ctx;
    const modelInput = ctx.inputs.model;
    const dataInput = ctx.inputs.data;
    if (!modelInput) throw new GraftError('INPUT_MISSING', `phase-two needs a transplant artifact in its 'model' input slot.`);
    if (!dataInput) throw new GraftError('INPUT_MISSING', `phase-two needs a split artifact in its 'data' input slot.`);
    const m = await import('@graft/model');
    const t = await import('@graft/train');
    const backend = await m.initBackend(ctx.backend, logger);

    const split = await readSplit(dataInput.path);
    const modelDir = join(modelInput.path, MODEL_DIR);
    const model = await m.loadModel(modelDir);
    try {
      const spec = m.specFromModel(model);
      if (spec.numClasses !== split.numClassesPhaseTwo) {
        throw new GraftError(
          'HEAD_WIDTH_MISMATCH',
          `the model in ${modelDir} has a ${spec.numClasses}-unit head but phase two has ${split.numClassesPhaseTwo} classes ` +
            `(${split.phaseTwoClasses.join(', ')}); put the transplant stage between phase-one and phase-two`,
        );
      }
      const classLabels = split.phaseTwoClasses;
      const classMap = split.phaseTwoClassMap;
      const load = async (part: 'train' | 'validation' | 'test') =>
        m.mapLabels(await readSplitData(dataInput.path, 'phase-two', part), classMap, `phase-two ${part}`);
      const [train, validation, test] = [await load('train'), await load('validation'), await load('test')];
      if (train.length === 0 || validation.length === 0 || test.length === 0) {
        throw new GraftError('EMPTY_SPLIT', 'a phase-two split (train, validation or test) is empty; phase-two needs rows in all three');
      }
      const vars = m.networkVariables(model);
      const valAccuracyBefore = m.accuracyOn(vars, spec, validation);
      logger.info(
        { train: train.length, valAccuracyBefore, trainBase: params.trainBase },
        `phase-two: ${params.epochs} epochs x ${params.batchesPerEpoch} batches of ${params.batchSize}, ${params.trainBase ? 'every layer' : 'head only'}; val accuracy before ${(valAccuracyBefore * 100).toFixed(2)} %`,
      );

      const result = await t.trainLoop({
        model,
        train,
        validation,
        epochs: params.epochs,
        plan: t.shuffledPlan(train.length, params.batchSize, params.batchesPerEpoch),
        rng: new Rng(params.seed),
        learningRate: params.learningRate,
        l2: params.l2,
        keepProb: params.keepProb,
        evalEvery: params.evalEvery,
        trainable: params.trainBase ? 'all' : 'head',
        // The seed regularised only what it trained; training everything brings back phase one's loss.
        regularise: params.trainBase ? ['convKernel', 'fc1Kernel', 'headKernel'] : ['headKernel'],
        checkpoint: { dir: ctx.checkpointDir, resume: ctx.resume, fingerprint: runFingerprint(NAME, VERSION, ctx) },
        logger,
        progress: ctx.progress,
        progressLabel: NAME,
      });

      const valAccuracy = m.accuracyOn(vars, spec, validation);
      const testPredicted = m.predictClasses(vars, spec, test);
      const testEval = m.classificationReport(testPredicted, test.labels, spec.numClasses);
      const newUnits = new Set(split.heldOut.map((label) => classMap[String(label)]));
      const newRows = [...test.labels.keys()].filter((i) => newUnits.has(test.labels[i]!));
      const newClassTestAccuracy =
        newRows.length === 0 ? null : m.accuracyOf(newRows.map((i) => testPredicted[i]!), newRows.map((i) => test.labels[i]!));

      await m.saveModel(model, join(ctx.outDir, MODEL_DIR), { graft: { stage: NAME, trainBase: params.trainBase, classLabels } });
      return await writeTrainingMetrics<PhaseTwoMetricsFile>(ctx, {
        stage: NAME,
        head: { trainBase: params.trainBase, heldOut: split.heldOut, classLabels, classMap, valAccuracyBefore, newClassTestAccuracy },
        result,
        valAccuracy,
        testEval,
        backend,
        heldOut: split.heldOut,
        summary: { newClassTestAccuracy, valAccuracyBefore },
      });
    } finally {
      model.dispose();
    }
  },
});
