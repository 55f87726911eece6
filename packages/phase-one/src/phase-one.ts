import { z } from 'zod';
import { GraftError, MAX_SEED, Rng, UsageError, defineStage } from '@graft/core';
import { readSplitData, readSplitInfo } from '@graft/data';
import type { SplitInfo } from '@graft/data';
// Types only from the packages that load tfjs; the CLI must not pay for it on cache hits.
import type { TrainingMetricsFile } from '@graft/train';
import { ALL_LAYERS, PHASE_ONE_DEFAULTS, TRAINING_LIMITS } from '@graft/train/recipes';
import { PHASE_ONE_ERROR_CODES } from './error-codes.ts';

const D = PHASE_ONE_DEFAULTS;

export const phaseOneParams = z.strictObject({
  epochs: z.number().int().min(1).max(TRAINING_LIMITS.epochs).default(D.epochs).describe('Passes over the training set'),
  batchSize: z.number().int().min(1).max(TRAINING_LIMITS.batchSize).default(D.batchSize),
  learningRate: z.number().positive().max(TRAINING_LIMITS.learningRate).default(D.learningRate).describe('Adam learning rate'),
  l2: z.number().min(0).max(TRAINING_LIMITS.l2).default(D.l2).describe('Weight of mean(l2(conv), l2(fc1), l2(head)) in the loss'),
  keepProb: z.number().gt(0).max(1).default(D.keepProb).describe('Dropout keep probability during training'),
  shuffle: z
    .boolean()
    .default(false)
    .describe('false: the seed notebook batching (contiguous, file order, tail dropped); true: reshuffle every epoch'),
  evalEvery: z.number().int().min(1).max(TRAINING_LIMITS.evalEvery).default(D.evalEvery).describe('Record batch and validation accuracy every this many batches'),
  seed: z.number().int().min(0).max(MAX_SEED).default(0).describe('Initial weights, dropout masks and shuffling'),
  maxBatchesPerEpoch: z.number().int().min(1).max(TRAINING_LIMITS.batchesPerEpoch).optional().describe('Cut every epoch short (quick runs)'),
  dataset: z
    .enum(['phase-one', 'phase-two'])
    .default('phase-one')
    .describe("'phase-one': without the held-out classes; 'phase-two': every class, from scratch (the baseline)"),
});
export type PhaseOneParams = z.output<typeof phaseOneParams>;

/** Contents of metrics.json (the training-metrics format plus the dataset trained on). */
export type PhaseOneMetricsFile = TrainingMetricsFile & { dataset: PhaseOneParams['dataset'] };

function classesFor(split: SplitInfo, dataset: PhaseOneParams['dataset']): { classMap: Record<string, number>; classLabels: number[] } {
  return dataset === 'phase-one'
    ? { classMap: split.classMap, classLabels: split.phaseOneClasses }
    : { classMap: split.phaseTwoClassMap, classLabels: split.phaseTwoClasses };
}

const NAME = 'phase-one';

export const phaseOneStage = defineStage({
  name: NAME,
  // 2: fused wasm Adam with the L2 gradient added in the update (float32 rounding differs from 1).
  version: '2',
  description: 'Trains the CNN from scratch on the phase-one classes (or on every class: dataset "phase-two").',
  params: phaseOneParams,
  inputs: { data: 'split' },
  output: ['model', 'training-metrics'],
  compute: true,
  async run(ctx) {
    const { params, logger } = ctx;
    const input = ctx.inputs.data;
    if (!input) throw new GraftError(PHASE_ONE_ERROR_CODES.inputMissing, `phase-one needs a split artifact in its 'data' input slot.`);
    if (!ctx.compute) throw new GraftError(PHASE_ONE_ERROR_CODES.backendNotSelected, 'phase-one computes with tfjs: run it through the runner, which selects the backend first.');
    const m = await import('@graft/model');
    const t = await import('@graft/train');

    const split = await readSplitInfo(input.path);
    const { classMap, classLabels } = classesFor(split, params.dataset);
    const load = async (part: 'train' | 'validation' | 'test') =>
      m.mapLabels(await readSplitData(input.path, params.dataset, part), classMap, `${params.dataset} ${part}`);
    const [train, validation, test] = [await load('train'), await load('validation'), await load('test')];
    if (validation.length === 0 || test.length === 0) {
      throw new UsageError(PHASE_ONE_ERROR_CODES.emptySplit, `the ${params.dataset} ${validation.length === 0 ? 'validation' : 'test'} set is empty; phase-one needs rows to evaluate on`);
    }
    const plan = params.shuffle
      ? t.shuffledEpochPlan(train.length, params.batchSize, params.maxBatchesPerEpoch)
      : t.contiguousPlan(train.length, params.batchSize, params.maxBatchesPerEpoch);
    if (plan.batchesPerEpoch === 0) {
      throw new UsageError(
        PHASE_ONE_ERROR_CODES.trainSetSmallerThanBatch,
        `the ${params.dataset} training set has ${train.length} rows, too few for one batch of ${params.batchSize} ` +
          '(the seed batching drops the last batch); lower batchSize',
      );
    }

    const rng = new Rng(params.seed);
    const spec = { ...m.SEED_NETWORK, rows: train.rows, cols: train.cols, numClasses: classLabels.length, dropoutRate: 1 - params.keepProb };
    const model = m.buildNetwork(spec, rng);
    try {
      logger.info(
        { dataset: params.dataset, train: train.length, validation: validation.length, test: test.length, classes: classLabels, batchesPerEpoch: plan.batchesPerEpoch },
        `phase-one: ${params.epochs} epochs x ${plan.batchesPerEpoch} batches of ${params.batchSize}`,
      );
      const result = await t.trainLoop({
        ...ALL_LAYERS,
        model,
        train,
        validation,
        epochs: params.epochs,
        plan,
        rng,
        learningRate: params.learningRate,
        l2: params.l2,
        keepProb: params.keepProb,
        evalEvery: params.evalEvery,
        checkpoint: { dir: ctx.checkpointDir, resume: ctx.resume, fingerprint: ctx.key },
        logger,
        progress: ctx.progress,
        progressLabel: NAME,
      });

      const vars = m.networkVariables(model);
      const valAccuracy = m.accuracyOn(vars, spec, validation);
      const testEval = m.evaluate(vars, spec, test);
      await m.writeModelArtifact(ctx.outDir, model, { graft: { stage: NAME, dataset: params.dataset, classLabels } });
      return await t.writeTrainingMetrics(ctx, {
        stage: NAME,
        head: { dataset: params.dataset, classLabels, classMap },
        result,
        valAccuracy,
        testEval,
        backend: ctx.compute,
        heldOut: split.heldOut,
      });
    } finally {
      model.dispose();
    }
  },
});
