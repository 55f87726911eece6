import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { GraftError, JsonFileError, readJsonFile } from '@graft/core';
import type { StageContext, StageResult } from '@graft/core';
import { perClassByLabel, testClasses } from '@graft/model';
import type { Evaluation } from '@graft/model';
import type { TrainResult } from './train-loop.ts';
import { TRAIN_ERROR_CODES } from './error-codes.ts';

/**
 * The `training-metrics` artifact kind (phase-one and phase-two write it beside their
 * model): metrics.json with the stage's own leading fields, then the learning curve,
 * accuracies, confusion matrix and timings every training stage records. This module owns
 * the file name, its schema, its writer and its reader.
 */
export const METRICS_FILE = 'metrics.json';

const curvePointSchema = z.object({
  epoch: z.number().int(),
  batch: z.number().int(),
  step: z.number().int(),
  loss: z.number(),
  batchAccuracy: z.number(),
  valAccuracy: z.number(),
});

/** metrics.json of a training stage, declared once; the stage's own leading fields pass through. */
export const trainingMetricsSchema = z.looseObject({
  /** Original label of each output unit. */
  classLabels: z.array(z.number().int()),
  /** Original label -> output unit. */
  classMap: z.record(z.string(), z.number().int()),
  curve: z.array(curvePointSchema),
  valAccuracy: z.number(),
  testAccuracy: z.number(),
  /** Original label -> test accuracy on that label. */
  perClassTestAccuracy: z.record(z.string(), z.number().nullable()),
  /** confusion[true unit][predicted unit] on the test set (units as in classLabels). */
  confusion: z.array(z.array(z.number().int())),
  testCount: z.number().int(),
  steps: z.number().int(),
  msPerStep: z.number(),
  durationMs: z.number(),
  resumedAfterEpoch: z.number().int().nullable(),
  backend: z.string(),
  tfjs: z.string(),
});

/** The fields every training stage's metrics.json has (stage-specific ones extend it). */
export type TrainingMetricsFile = z.output<typeof trainingMetricsSchema>;

/** What the stage itself puts first in metrics.json: at least the classes. */
export type TrainingMetricsHead = { classLabels: number[]; classMap: Record<string, number> } & Record<string, unknown>;

/**
 * The ending every training stage shares: metrics.json (stage fields first, then the
 * curve, accuracies, confusion and timings), a log record, and the StageResult whose
 * metrics are the scalar summary plus the curve (`summary` adds stage-specific scalars).
 */
export async function writeTrainingMetrics(
  ctx: Pick<StageContext<unknown>, 'outDir' | 'logger'>,
  outcome: {
    stage: string;
    head: TrainingMetricsHead;
    result: TrainResult;
    valAccuracy: number;
    testEval: Evaluation;
    backend: { backend: string; tfjsVersion: string };
    /** The split's held-out labels (for the per-class breakdown in the result metrics). */
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
    perClassTestAccuracy: perClassByLabel(testEval, head.classLabels),
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
      testClasses: testClasses(testEval, head.classLabels, heldOut),
    },
    producer: { tfjs: backend.tfjsVersion, backend: backend.backend },
  };
}

/** Reads metrics.json of a training artifact: TRAINING_METRICS_INVALID for anything that is not one. */
export async function readTrainingMetrics(artifactPath: string): Promise<TrainingMetricsFile> {
  const path = join(artifactPath, METRICS_FILE);
  try {
    return await readJsonFile(path, trainingMetricsSchema);
  } catch (error) {
    if (!(error instanceof JsonFileError)) throw error;
    throw new GraftError(TRAIN_ERROR_CODES.trainingMetricsInvalid, `${path} is not a training stage's metrics file (${error.problems.join('; ')}); rebuild that artifact.`, {
      cause: error,
    });
  }
}
