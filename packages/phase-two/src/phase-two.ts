import { z } from 'zod';
import { GraftError, MAX_SEED, Rng, UsageError, defineStage } from '@graft/core';
import { readSplitData, readSplitInfo } from '@graft/data';
// Types only from the packages that load tfjs; the CLI must not pay for it on cache hits.
import type { BaseFeatures } from '@graft/model';
import type { TrainingMetricsFile } from '@graft/train';
import { ALL_LAYERS, HEAD_ONLY, PHASE_TWO_DEFAULTS, TRAINING_LIMITS } from '@graft/train/recipes';
import { PHASE_TWO_ERROR_CODES } from './error-codes.ts';

const D = PHASE_TWO_DEFAULTS;

export const phaseTwoParams = z
  .strictObject({
    epochs: z.number().int().min(1).max(TRAINING_LIMITS.epochs).default(D.epochs),
    batchesPerEpoch: z
      .number()
      .int()
      .min(1)
      .max(TRAINING_LIMITS.batchesPerEpoch)
      .default(D.batchesPerEpoch)
      .describe(`Batches per epoch, each epoch a fresh shuffle (TF next_batch); batchesPerEpoch × batchSize at most ${TRAINING_LIMITS.rowsPerEpoch}`),
    batchSize: z.number().int().min(1).max(TRAINING_LIMITS.batchSize).default(D.batchSize),
    learningRate: z.number().positive().max(TRAINING_LIMITS.learningRate).default(D.learningRate).describe('Adam learning rate (fresh optimizer state)'),
    l2: z.number().min(0).max(TRAINING_LIMITS.l2).default(D.l2).describe('Weight of l2(head kernel) in the loss (all three kernels when trainBase)'),
    keepProb: z.number().gt(0).max(1).default(D.keepProb).describe('Dropout keep probability, active in the frozen base too'),
    evalEvery: z.number().int().min(1).max(TRAINING_LIMITS.evalEvery).default(D.evalEvery),
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

/** Contents of metrics.json (the training-metrics format plus these leading fields). */
export type PhaseTwoMetricsFile = TrainingMetricsFile & {
  trainBase: boolean;
  heldOut: number[];
  /** Test accuracy on the held-out (new) classes only. */
  newClassTestAccuracy: number | null;
  /** Validation accuracy of the input model, before any phase-two step. */
  valAccuracyBefore: number;
};

const NAME = 'phase-two';

export const phaseTwoStage = defineStage({
  name: NAME,
  // 2: fused wasm Adam with the L2 gradient added in the update (float32 rounding differs from 1).
  // 3: metrics.json and manifest metrics call the held-out classes' test accuracy
  //    newClassTestAccuracy (was newClassAccuracy), as transplant does, so compare lines them up.
  version: '3',
  description: 'Fine-tunes the grafted head (or every layer: trainBase) on every class.',
  params: phaseTwoParams,
  inputs: { model: 'model', data: 'split' },
  output: ['model', 'training-metrics'],
  compute: true,
  async run(ctx) {
    const { params, logger } = ctx;
    const modelInput = ctx.inputs.model;
    const dataInput = ctx.inputs.data;
    if (!modelInput) throw new GraftError(PHASE_TWO_ERROR_CODES.inputMissing, `phase-two needs a transplant artifact in its 'model' input slot.`);
    if (!dataInput) throw new GraftError(PHASE_TWO_ERROR_CODES.inputMissing, `phase-two needs a split artifact in its 'data' input slot.`);
    if (!ctx.compute) throw new GraftError(PHASE_TWO_ERROR_CODES.backendNotSelected, 'phase-two computes with tfjs: run it through the runner, which selects the backend first.');
    const m = await import('@graft/model');
    const t = await import('@graft/train');

    const split = await readSplitInfo(dataInput.path);
    const modelDir = m.modelDirOf(modelInput.path);
    const model = await m.readModelArtifact(modelInput);
    let validationBase: BaseFeatures | null = null;
    try {
      const spec = m.specFromModel(model);
      if (spec.numClasses !== split.numClassesPhaseTwo) {
        throw new UsageError(
          PHASE_TWO_ERROR_CODES.headWidthMismatch,
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
        throw new UsageError(PHASE_TWO_ERROR_CODES.emptySplit, 'a phase-two split (train, validation or test) is empty; phase-two needs rows in all three');
      }
      const vars = m.networkVariables(model);
      // The head-only run never changes the base: the validation set's base features serve
      // the accuracy before and after training (the same bits as accuracyOn; frozen-base.ts).
      const frozenBase = !params.trainBase && t.baseCacheSettings().enabled;
      validationBase = frozenBase ? m.baseFeatures(vars, spec, validation) : null;
      const validationAccuracy = () =>
        validationBase ? m.accuracyOf(m.predictFromBaseFeatures(vars, validationBase), validation.labels) : m.accuracyOn(vars, spec, validation);
      const valAccuracyBefore = validationAccuracy();
      logger.info(
        { train: train.length, valAccuracyBefore, trainBase: params.trainBase },
        `phase-two: ${params.epochs} epochs x ${params.batchesPerEpoch} batches of ${params.batchSize}, ${params.trainBase ? 'every layer' : 'head only'}; val accuracy before ${(valAccuracyBefore * 100).toFixed(2)} %`,
      );

      const result = await t.trainLoop({
        // The seed trained only the head; trainBase is the full fine-tuning baseline.
        ...(params.trainBase ? ALL_LAYERS : HEAD_ONLY),
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
        checkpoint: { dir: ctx.checkpointDir, resume: ctx.resume, fingerprint: ctx.key },
        logger,
        progress: ctx.progress,
        progressLabel: NAME,
      });

      const valAccuracy = validationAccuracy();
      const testPredicted = m.predictClasses(vars, spec, test);
      const testEval = m.classificationReport(testPredicted, test.labels, spec.numClasses);
      const newUnits = new Set(split.heldOut.map((label) => classMap[String(label)]));
      const newRows = [...test.labels.keys()].filter((i) => newUnits.has(test.labels[i]!));
      const newClassTestAccuracy =
        newRows.length === 0 ? null : m.accuracyOf(newRows.map((i) => testPredicted[i]!), newRows.map((i) => test.labels[i]!));

      await m.writeModelArtifact(ctx.outDir, model, { graft: { stage: NAME, trainBase: params.trainBase, classLabels } });
      return await t.writeTrainingMetrics(ctx, {
        stage: NAME,
        head: { trainBase: params.trainBase, heldOut: split.heldOut, classLabels, classMap, valAccuracyBefore, newClassTestAccuracy },
        result,
        valAccuracy,
        testEval,
        backend: ctx.compute,
        heldOut: split.heldOut,
        summary: { newClassTestAccuracy, valAccuracyBefore },
      });
    } finally {
      validationBase?.dispose();
      model.dispose();
    }
  },
});
