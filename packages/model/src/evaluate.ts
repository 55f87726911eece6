import * as tf from '@tensorflow/tfjs';
import { features, gatherBatch, headLogits, inputTensor } from './forward.ts';
import type { LabelledImages } from './forward.ts';
import type { NetworkSpec, NetworkVariables } from './network.ts';

/** Large batches: evaluation has no tape and no dropout, so memory is the only limit. */
export const EVAL_BATCH_SIZE = 1000;

export interface Evaluation {
  count: number;
  accuracy: number;
  /** Accuracy per true class (index = class); null for a class with no examples. */
  perClassAccuracy: Array<number | null>;
  /** confusion[trueClass][predictedClass] = count. */
  confusion: number[][];
}

/** Predicted class per image, dropout off. */
export function predictClasses(
  vars: NetworkVariables,
  spec: NetworkSpec,
  data: LabelledImages,
  batchSize = EVAL_BATCH_SIZE,
): Int32Array {
  const out = new Int32Array(data.length);
  for (let start = 0; start < data.length; start += batchSize) {
    const end = Math.min(start + batchSize, data.length);
    const { x, size } = gatherBatch(data, [start, end]);
    const predicted = tf.tidy(() => tf.argMax(headLogits(vars, features(vars, inputTensor(x, size, spec), spec, null)), 1));
    out.set(predicted.dataSync() as Int32Array, start);
    predicted.dispose();
  }
  return out;
}

/**
 * The base's output (fc1 after relu, dropout off) for every image, in the chunks of
 * EVAL_BATCH_SIZE rows that predictClasses uses. While the base is frozen (phase two) these
 * are fixed: computed once, every later prediction is the head alone
 * (predictFromBaseFeatures), with the same kernels on the same chunks, so the same bits.
 */
export interface BaseFeatures {
  readonly chunks: readonly tf.Tensor2D[];
  readonly length: number;
  dispose(): void;
}

export function baseFeatures(vars: NetworkVariables, spec: NetworkSpec, data: LabelledImages, batchSize = EVAL_BATCH_SIZE): BaseFeatures {
  const chunks: tf.Tensor2D[] = [];
  try {
    for (let start = 0; start < data.length; start += batchSize) {
      const end = Math.min(start + batchSize, data.length);
      const { x, size } = gatherBatch(data, [start, end]);
      chunks.push(tf.tidy(() => features(vars, inputTensor(x, size, spec), spec, null)));
    }
  } catch (error) {
    tf.dispose(chunks);
    throw error;
  }
  return { chunks, length: data.length, dispose: () => tf.dispose(chunks) };
}

/** predictClasses from baseFeatures: only the head runs. */
export function predictFromBaseFeatures(vars: Pick<NetworkVariables, 'headKernel' | 'headBias'>, base: BaseFeatures): Int32Array {
  const out = new Int32Array(base.length);
  let start = 0;
  for (const chunk of base.chunks) {
    const predicted = tf.tidy(() => tf.argMax(headLogits(vars, chunk), 1));
    out.set(predicted.dataSync() as Int32Array, start);
    predicted.dispose();
    start += chunk.shape[0];
  }
  return out;
}

/** Share of predictions equal to the labels; 0 for an empty set. */
export function accuracyOf(predicted: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (predicted.length === 0) return 0;
  let correct = 0;
  for (let i = 0; i < predicted.length; i++) if (predicted[i] === labels[i]) correct++;
  return correct / predicted.length;
}

export function classificationReport(predicted: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): Evaluation {
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < predicted.length; i++) {
    const row = confusion[labels[i]!];
    if (row === undefined) throw new RangeError(`label ${labels[i]} at row ${i} is outside 0..${numClasses - 1}`);
    row[predicted[i]!]!++;
  }
  const perClassAccuracy = confusion.map((row, c) => {
    const total = row.reduce((s, n) => s + n, 0);
    return total === 0 ? null : row[c]! / total;
  });
  return { count: predicted.length, accuracy: accuracyOf(predicted, labels), perClassAccuracy, confusion };
}

export function evaluate(vars: NetworkVariables, spec: NetworkSpec, data: LabelledImages, batchSize = EVAL_BATCH_SIZE): Evaluation {
  return classificationReport(predictClasses(vars, spec, data, batchSize), data.labels, spec.numClasses);
}

export function accuracyOn(vars: NetworkVariables, spec: NetworkSpec, data: LabelledImages, batchSize = EVAL_BATCH_SIZE): number {
  return accuracyOf(predictClasses(vars, spec, data, batchSize), data.labels);
}

/** An evaluation's per-class accuracies keyed by the original label each output unit stands for. */
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
