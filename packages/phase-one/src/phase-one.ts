import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { GraftError, MAX_SEED, Rng, defineStage } from '@graft/core';
import type { CurvePoint, StageContext, StageResult } from '@graft/core';
import { readSplit, readSplitData } from '@graft/split';
import type { SplitInfo } from '@graft/split';
// Types only: the model package loads tfjs, which the CLI must not pay for on cache hits.
import type { BackendInfo, Evaluation } from '@graft/model';
import type { TrainResult } from '@graft/train';

/**
 * Upper bounds of the training params (phase two shares them): far above any sensible
 * run, low enough that a value past them is refused when the config is resolved (exit 2,
 * naming the param) instead of failing mid-run on an impossible allocation
 * ("Invalid typed array length"). Bounds never change a param's value, so no key changes.
 */
export const TRAINING_LIMITS = {
  /** One epoch of phase one takes about a minute here; 1000 is most of a day. */
  epochs: 1000,
  /** A batch's conv activations alone are batchSize × 24 × 24 × 30 floats: 283 MB at 4096, twice that with gradients. */
  batchSize: 4096,
  batchesPerEpoch: 1_000_000,
  /** batchesPerEpoch × batchSize: phase two draws each epoch's shuffle order up front, 4 bytes a row (40 MB here). */
  rowsPerEpoch: 10_000_000,
  evalEvery: 1_000_000,
  /**
   * Training computes in float32, where anything larger is Infinity. A huge learning rate
   * still runs and stops with NON_FINITE_LOSS naming the step (the reliability tests
   * diverge training that way on purpose), so no tighter bound is imposed on taste.
   */
  learningRate: 3.4028234663852886e38,
  l2: 3.4028234663852886e38,
} as const;

export const phaseOneParams = z.strictObject({
  epochs: z.number().int().min(1).max(TRAINING_LIMITS.epochs).default(10).describe('Passes over the training set'),
  batchSize: z.number().int().min(1).max(TRAINING_LIMITS.batchSize).default(100),
  learningRate: z.number().positive().max(TRAINING_LIMITS.learningRate).default(1e-4).describe('Adam learning rate'),
  l2: z.number().min(0).max(TRAINING_LIMITS.l2).default(0.001).describe('Weight of mean(l2(conv), l2(fc1), l2(head)) in the loss'),
  keepProb: z.number().gt(0).max(1).default(0.7).describe('Dropout keep probability during training'),
  shuffle: z
    .boolean()
    .default(false)
    .describe('false: the seed notebook batching (contiguous, file order, tail dropped); true: reshuffle every epoch'),
  evalEvery: z.number().int().min(1).max(TRAINING_LIMITS.evalEvery).default(50).describe('Record batch and validation accuracy every this many batches'),
  seed: z.number().int().min(0).max(MAX_SEED).default(0).describe('Initial weights, dropout masks and shuffling'),
  maxBatchesPerEpoch: z.number().int().min(1).max(TRAINING_LIMITS.batchesPerEpoch).optional().describe('Cut every epoch short (quick runs)'),
  dataset: z
    .enum(['phase-one', 'phase-two'])
    .default('phase-one')
    .describe("'phase-one': without the held-out classes; 'phase-two': every class, from scratch (the baseline)"),
});
export type PhaseOneParams = z.output<typeof phaseOneParams>;

export const MODEL_DIR = 'model';
export const METRICS_FILE = 'metrics.json';

/** Contents of metrics.json. */
export interface PhaseOneMetricsFile {
  dataset: PhaseOneParams['dataset'];
  /** Original label of each output unit. */
  classLabels: number[];
  /** Original label -> output unit. */
  classMap: Record<string, number>;
  curve: CurvePoint[];
  valAccuracy: number;
  testAccuracy: number;
  /** Original label -> test accuracy on that label. */
  perClassTestAccuracy: Record<string, number | null>;
  /** confusion[true unit][predicted unit] on the test set (units as in classLabels). */
  confusion: number[][];
  testCount: number;
  steps: number;
  msPerStep: number;
  durationMs: number;
  resumedAfterEpoch: number | null;
  backend: string;
  tfjs: string;
}

export function perClassByLabel(evaluation: Evaluation, classLabels: readonly number[]): Record<string, number | null> {
  return Object.fromEntries(classLabels.map((label, i) => [String(label), evaluation.perClassAccuracy[i] ?? null]));
}

/**
 * The test set broken down by class, in the stage result's metrics (so in the manifest and
 * in run.json, where `graft report` and `graft ui` read it). Arrays aligned with `labels`
 * (the original label of each output unit): report code skips arrays in metric tables, so
 * these stay out of `graft compare`. Not in metrics.json, whose format stays as it was:
 * the same numbers are there already (confusion, perClassTestAccuracy; counts are the
 * confusion rows' sums), so artifacts built before keep their keys and their files.
 */
export interface TestClasses {
  labels: number[];
  /** Test images per class (the confusion row sums). */
  count: number[];
  /** Test accuracy per class; null for a class with no test images. */
  accuracy: Array<number | null>;
  /** confusion[true unit][predicted unit] on the test set. */
  confusion: number[][];
  /** Labels the phase-one model never saw (the split's held-out classes). */
  heldOut: number[];
}

export function testClasses(evaluation: Evaluation, classLabels: readonly number[], heldOut: readonly number[]): TestClasses {
  return {
    labels: [...classLabels],
    count: evaluation.confusion.map((row) => row.reduce((sum, n) => sum + n, 0)),
    accuracy: classLabels.map((_, i) => evaluation.perClassAccuracy[i] ?? null),
    confusion: evaluation.confusion.map((row) => [...row]),
    heldOut: [...heldOut],
  };
}

/** Stage-specific leading fields of metrics.json; the shared ones follow. */
type MetricsHead<File> = Omit<File, Exclude<keyof PhaseOneMetricsFile, 'dataset' | 'classLabels' | 'classMap'>>;

/**
 * The ending both training stages share: metrics.json (stage fields first, then the
 * curve, accuracies, confusion and timings), a log record, and the StageResult whose
 * metrics are the scalar summary plus the curve (`summary` adds stage-specific scalars).
 */
export async function writeTrainingMetrics<File extends PhaseOneMetricsFile | Omit<PhaseOneMetricsFile, 'dataset'>>(
  ctx: Pick<StageContext<unknown>, 'outDir' | 'logger'>,
  outcome: {
    stage: string;
    head: MetricsHead<File>;
    result: TrainResult;
    valAccuracy: number;
    testEval: Evaluation;
    backend: BackendInfo;
    heldOut: readonly number[];
    summary?: Record<string, unknown>;
  },
): Promise<StageResult> {
  const { stage, head, result, valAccuracy, testEval, backend, heldOut, summary = {} } = outcome;
  const file = {
    ...head,
    curve: result.curve,
    valAccuracy,
    testAccuracy: testEval.accuracy,
    perClassTestAccuracy: perClassByLabel(testEval, (head as { classLabels: number[] }).classLabels),
    confusion: testEval.confusion,
    testCount: testEval.count,
    steps: result.steps,
    msPerStep: result.msPerStep,
    durationMs: result.durationMs,
    resumedAfterEpoch: result.resumedAfterEpoch,
    backend: backend.backend,
    tfjs: backend.tfjsVersion,
  };
  await mkdir(ctx.outDir, { recursive: true });
  await writeFile(join(ctx.outDir, METRICS_FILE), `${JSON.stringify(file, null, 2)}\n`);
  ctx.logger.info(
    { testAccuracy: testEval.accuracy, valAccuracy, ...summary, steps: result.steps, msPerStep: result.msPerStep },
    `${stage}: test accuracy ${(testEval.accuracy * 100).toFixed(2)} %`,
  );
  return {
    metrics: {
      testAccuracy: testEval.accuracy,
      valAccuracy,
      ...summary,
      msPerStep: result.msPerStep,
      steps: result.steps,
      durationMs: result.durationMs,
      curve: result.curve,
      testClasses: testClasses(testEval, (head as { classLabels: number[] }).classLabels, heldOut),
    },
    producer: { tfjs: backend.tfjsVersion, backend: backend.backend },
  };
}

/** Identifies a run for its checkpoints: same stage, params and inputs. */
export function runFingerprint(stage: string, version: string, ctx: StageContext<unknown>): string {
  const inputs = Object.fromEntries(Object.entries(ctx.inputs).map(([slot, artifact]) => [slot, artifact.key]));
  return JSON.stringify({ stage, version, params: ctx.params, inputs });
}

function classesFor(split: SplitInfo, dataset: PhaseOneParams['dataset']): { classMap: Record<string, number>; classLabels: number[] } {
  return dataset === 'phase-one'
    ? { classMap: split.classMap, classLabels: split.phaseOneClasses }
    : { classMap: split.phaseTwoClassMap, classLabels: split.phaseTwoClasses };
}

const NAME = 'phase-one';
// 2: fused wasm Adam with the L2 gradient added in the update (float32 rounding differs from 1).
const VERSION = '2';

export const phaseOneStage = defineStage({
  name: NAME,
  version: VERSION,
  description: 'Trains the CNN from scratch on the phase-one classes (or on every class: dataset "phase-two").',
  params: phaseOneParams,
  inputs: ['data'],
  async run(ctx) {
    const { params, logger } = ctx;
    const input = ctx.inputs.data;
    if (!input) throw new GraftError('INPUT_MISSING', `phase-one needs a split artifact in its 'data' input slot.`);
    const m = await import('@graft/model');
    const t = await import('@graft/train');
    const backend = await m.initBackend(ctx.backend, logger);

    const split = await readSplit(input.path);
    const { classMap, classLabels } = classesFor(split, params.dataset);
    const load = async (part: 'train' | 'validation' | 'test') =>
      m.mapLabels(await readSplitData(input.path, params.dataset, part), classMap, `${params.dataset} ${part}`);
    const [train, validation, test] = [await load('train'), await load('validation'), await load('test')];
    if (validation.length === 0 || test.length === 0) {
      throw new GraftError('EMPTY_SPLIT', `the ${params.dataset} ${validation.length === 0 ? 'validation' : 'test'} set is empty; phase-one needs rows to evaluate on`);
    }
    const plan = params.shuffle
      ? t.shuffledEpochPlan(train.length, params.batchSize, params.maxBatchesPerEpoch)
      : t.contiguousPlan(train.length, params.batchSize, params.maxBatchesPerEpoch);
    if (plan.batchesPerEpoch === 0) {
      throw new GraftError(
        'EMPTY_SPLIT',
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
        trainable: 'all',
        regularise: ['convKernel', 'fc1Kernel', 'headKernel'],
        checkpoint: { dir: ctx.checkpointDir, resume: ctx.resume, fingerprint: runFingerprint(NAME, VERSION, ctx) },
        logger,
        progress: ctx.progress,
        progressLabel: NAME,
      });

      const vars = m.networkVariables(model);
      const valAccuracy = m.accuracyOn(vars, spec, validation);
      const testEval = m.evaluate(vars, spec, test);
      await m.saveModel(model, join(ctx.outDir, MODEL_DIR), { graft: { stage: NAME, dataset: params.dataset, classLabels } });
      return await writeTrainingMetrics<PhaseOneMetricsFile>(ctx, {
        stage: NAME,
        head: { dataset: params.dataset, classLabels, classMap },
        result,
        valAccuracy,
        testEval,
        backend,
        heldOut: split.heldOut,
      });
    } finally {
      model.dispose();
    }
  },
});
