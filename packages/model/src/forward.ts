import * as tf from '@tensorflow/tfjs';
import type { Rng } from '@graft/core';
import { featureGeometry } from './network.ts';
import type { NetworkSpec, NetworkVariables } from './network.ts';

/** What training and evaluation need of a dataset; @graft/data's ImageTable fits. */
export interface LabelledImages {
  length: number;
  rows: number;
  cols: number;
  /** length * rows * cols raw pixels (0..255), image after image. */
  images: Uint8Array;
  /** Class index per image, 0..numClasses-1 (already mapped). */
  labels: ArrayLike<number>;
}

/** A batch is either a contiguous [start, end) row range or explicit row numbers. */
export type Batch = readonly [number, number] | Uint32Array;

export function batchRows(batch: Batch): { length: number; row(i: number): number } {
  if (isRange(batch)) {
    const [start, end] = batch;
    return { length: end - start, row: (i) => start + i };
  }
  return { length: batch.length, row: (i) => batch[i]! };
}

function isRange(batch: Batch): batch is readonly [number, number] {
  return !(batch instanceof Uint32Array);
}

/**
 * Pixels scaled to [0, 1] as the seed's input_data did, and the batch's labels. `into`, when
 * it has the batch's length, is filled instead of a new array (the training loop reuses one
 * a step: tensors made from it are gone by the next step).
 */
export function gatherBatch(data: LabelledImages, batch: Batch, into?: Float32Array): { x: Float32Array; y: Int32Array; size: number } {
  const rows = batchRows(batch);
  const pixels = data.rows * data.cols;
  const x = into?.length === rows.length * pixels ? into : new Float32Array(rows.length * pixels);
  const y = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows.row(i);
    if (!(r >= 0 && r < data.length)) throw new RangeError(`batch row ${r} is outside a dataset of ${data.length} rows`);
    const src = data.images.subarray(r * pixels, (r + 1) * pixels);
    const off = i * pixels;
    for (let p = 0; p < pixels; p++) x[off + p] = src[p]! / 255;
    y[i] = data.labels[r]!;
  }
  return { x, y, size: rows.length };
}

export function inputTensor(x: Float32Array, size: number, spec: Pick<NetworkSpec, 'rows' | 'cols'>): tf.Tensor4D {
  return tf.tensor4d(x, [size, spec.rows, spec.cols, 1], 'float32');
}

/** Scaled keep masks for the two dropout sites; null when dropout is off. */
export interface DropoutMasks {
  pool: Float32Array;
  fc1: Float32Array;
}

/**
 * Dropout masks drawn from our Rng (not tfjs's), so a seed fixes them on every backend
 * and a checkpointed Rng state resumes them exactly. Same semantics as tf.nn.dropout:
 * keep with probability keepProb, scale kept values by 1/keepProb.
 */
export function drawDropoutMasks(rng: Rng, size: number, spec: NetworkSpec, keepProb: number, reuse?: DropoutMasks | null): DropoutMasks | null {
  if (keepProb >= 1) return null;
  const { poolRows, poolCols } = featureGeometry(spec);
  // Every entry is written, so reused arrays (the loop's, from the step before) carry nothing over.
  const fill = (n: number, old: Float32Array | undefined) => fillKeepMask(rng, old?.length === n ? old : new Float32Array(n), keepProb);
  const pool = fill(size * poolRows * poolCols * spec.filters, reuse?.pool);
  const fc1 = fill(size * spec.hidden, reuse?.fc1);
  return { pool, fc1 };
}

/**
 * out[i] = rng.nextFloat() < keepProb ? 1/keepProb : 0, for every i in order.
 *
 * Half a million draws a step through Rng.nextFloat cost ~6 ms (each call loads and stores
 * the state array); this runs the same xoshiro128** steps on locals and stores the state
 * back once, so the masks and the generator's following state are exactly those of the
 * nextFloat loop (tested against it). It reads Rng's private state array: if @graft/core
 * ever stores it differently, the plain loop runs instead.
 *
 * The keep test is done without a branch (a random one mispredicts about once in three
 * draws at keepProb 0.7) and without leaving int32: nextFloat's r / 2^32 < keepProb is, for
 * an integer r, r < ceil(keepProb · 2^32) (exact in doubles), an unsigned comparison whose
 * borrow bit (Hacker's Delight 2-12) times the scale is the mask value, the same float32
 * bits as before. 2-2.5x faster than the branching loop (~2 ms vs ~5 ms for a step's
 * 482,000 draws, measured under load).
 */
export function fillKeepMask(rng: Rng, out: Float32Array, keepProb: number): Float32Array {
  const scale = 1 / keepProb;
  const state = (rng as unknown as { s?: unknown }).s;
  const limit = Math.ceil(keepProb * 4294967296);
  // keepProb within 2^-32 of 1 (or not in (0, 1]): the limit does not fit 32 bits; the plain loop.
  if (!(state instanceof Uint32Array) || state.length !== 4 || !(limit >= 1 && limit <= 0xffff_ffff)) {
    for (let i = 0; i < out.length; i++) out[i] = rng.nextFloat() < keepProb ? scale : 0;
    return out;
  }
  const y = limit | 0;
  let s0 = state[0]! | 0;
  let s1 = state[1]! | 0;
  let s2 = state[2]! | 0;
  let s3 = state[3]! | 0;
  for (let i = 0; i < out.length; i++) {
    const x = Math.imul(s1, 5);
    const r = Math.imul((x << 7) | (x >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    // 1 when r < y as unsigned 32-bit numbers, else 0.
    const kept = ((~r & y) | (~(r ^ y) & ((r - y) | 0))) >>> 31;
    out[i] = scale * kept;
  }
  state[0] = s0 >>> 0;
  state[1] = s1 >>> 0;
  state[2] = s2 >>> 0;
  state[3] = s3 >>> 0;
  return out;
}

/** conv -> relu -> pool -> dropout -> flatten -> fc1 -> relu -> dropout: the base's output. */
export function features(vars: NetworkVariables, x: tf.Tensor4D, spec: NetworkSpec, masks: DropoutMasks | null): tf.Tensor2D {
  return tf.tidy(() => fc1Features(vars, convPool(vars, x), spec, masks));
}

/**
 * conv -> relu -> max-pool, the part of the base before the first dropout. Each image's
 * output depends on that image alone (frozen-base.test.ts checks it on wasm and cpu), so a
 * frozen base's outputs can be computed once per image and reused (phase two's
 * PooledFeatureCache).
 */
export function convPool(vars: Pick<NetworkVariables, 'convKernel' | 'convBias'>, x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    // tf.fused ops add the bias and apply relu inside the conv/matmul kernel when no
    // gradient is being taken (the frozen base of phase two, evaluation); under a gradient
    // tape tfjs runs them as the separate ops they replace.
    const conv = tf.fused.conv2d({ x, filter: vars.convKernel as tf.Tensor4D, strides: 1, pad: 'valid', bias: vars.convBias, activation: 'relu' });
    return tf.maxPool(conv as tf.Tensor4D, 2, 2, 'same');
  });
}

/** dropout -> flatten -> fc1 -> relu -> dropout, from convPool's output. */
export function fc1Features(
  vars: Pick<NetworkVariables, 'fc1Kernel' | 'fc1Bias'>,
  pooled: tf.Tensor4D,
  spec: NetworkSpec,
  masks: DropoutMasks | null,
): tf.Tensor2D {
  return tf.tidy(() => {
    const size = pooled.shape[0];
    const { poolRows, poolCols, flat } = featureGeometry(spec);
    let h: tf.Tensor = pooled;
    if (masks) h = tf.mul(h, tf.tensor4d(masks.pool, [size, poolRows, poolCols, spec.filters]));
    // NHWC flatten, the same element order as the seed's tf.reshape and Keras' Flatten.
    const flatH = tf.reshape(h, [size, flat]) as tf.Tensor2D;
    let f = tf.fused.matMul({ a: flatH, b: vars.fc1Kernel as tf.Tensor2D, bias: vars.fc1Bias, activation: 'relu' }) as tf.Tensor2D;
    if (masks) f = tf.mul(f, tf.tensor2d(masks.fc1, [size, spec.hidden])) as tf.Tensor2D;
    return f;
  });
}

export function headLogits(vars: Pick<NetworkVariables, 'headKernel' | 'headBias'>, feats: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.add(tf.matMul(feats, vars.headKernel as tf.Tensor2D), vars.headBias));
}

/** Mean softmax cross-entropy of integer labels. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, logits.shape[1]), logits) as tf.Scalar);
}

/**
 * Mean softmax cross-entropy plus l2 x mean over `regularised` of sum(w^2)/2 (the seed's
 * tf.nn.l2_loss averaged over its kernels). The seed minimised the batch *sum*; with
 * Adam that is the same update as the mean (DESIGN.md §1). trainLoop computes the same
 * loss with the L2 gradient added by the optimizer instead (see createAdam's decay).
 */
export function trainingLoss(logits: tf.Tensor2D, labels: tf.Tensor1D, regularised: readonly tf.Tensor[], l2: number): tf.Scalar {
  return tf.tidy(() => {
    const ce = crossEntropy(logits, labels);
    if (l2 === 0 || regularised.length === 0) return ce;
    const terms = regularised.map((w) => tf.div(tf.sum(tf.square(w)), 2));
    const reg = tf.mul(tf.mean(tf.stack(terms)), l2);
    return tf.add(ce, reg) as tf.Scalar;
  });
}
