/**
 * Phase two trains the head only: the base is frozen, so everything it computes without
 * dropout is a fixed function of the image. Two things are computed once instead of at
 * every use, with the same kernels on the same inputs, so every number (curve, metrics,
 * weights) is the same bits as without the cache (frozen-base.test.ts):
 *
 * - training: conv -> relu -> max-pool of each training image (PooledFeatureCache), kept
 *   the first time the image is in a batch. Dropout comes after the pool, so the rest of
 *   the base (mask, fc1, mask) still runs every step. The seed's 55,000 images take
 *   55,000 × 4,320 floats = 950 MB, so the cache holds at most `maxBytes`; images past the
 *   bound are computed at every step as before.
 * - evaluation: the whole base (fc1 after relu, dropout off) of the validation set
 *   (curve-evaluation.ts, the phase-two stage), so each curve point is the head alone.
 *
 * GRAFT_BASE_CACHE=off turns both off (the benchmark's "before"); GRAFT_BASE_CACHE_MB sets
 * the training cache's bound.
 */
import { freemem, totalmem } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { GraftError } from '@graft/core';
import { batchRows, convPool, featureGeometry, inputTensor } from '@graft/model';
import type { Batch, LabelledImages, NetworkSpec, NetworkVariables } from '@graft/model';
import { TRAIN_ERROR_CODES } from './error-codes.ts';

export const BASE_CACHE_ENV = 'GRAFT_BASE_CACHE';
export const BASE_CACHE_MB_ENV = 'GRAFT_BASE_CACHE_MB';

/**
 * Default bound of the training cache: 1 GiB (the seed's 950 MB fits), at most 1/8 of the
 * machine's memory and half of what is available when phase two starts (several builds
 * side by side, `graft run --jobs`, each hold their own). The bound only decides how many
 * images are computed once rather than every step: results are the same bits either way.
 */
export function defaultBaseCacheBytes(total = totalmem(), available = freemem()): number {
  return Math.max(0, Math.min(1024 * 2 ** 20, Math.floor(total / 8), Math.floor(available / 2)));
}

export interface BaseCacheSettings {
  enabled: boolean;
  /** Bound of PooledFeatureCache's store, in bytes. */
  maxBytes: number;
}

/** The cache settings from GRAFT_BASE_CACHE (on|off, default on) and GRAFT_BASE_CACHE_MB (a whole number of MiB). */
export function baseCacheSettings(env: NodeJS.ProcessEnv = process.env): BaseCacheSettings {
  const flag = env[BASE_CACHE_ENV];
  if (flag !== undefined && flag !== '' && flag !== 'on' && flag !== 'off') {
    throw new GraftError(TRAIN_ERROR_CODES.badEnvironment, `${BASE_CACHE_ENV}=${flag} is not one of on, off; unset it or pick one`, { exitCode: 2 });
  }
  const mb = env[BASE_CACHE_MB_ENV];
  let maxBytes = defaultBaseCacheBytes();
  if (mb !== undefined && mb !== '') {
    if (!/^\d+$/.test(mb)) {
      throw new GraftError(TRAIN_ERROR_CODES.badEnvironment, `${BASE_CACHE_MB_ENV}=${mb} is not a whole number of MiB; unset it or give e.g. 512`, { exitCode: 2 });
    }
    maxBytes = Number(mb) * 2 ** 20;
  }
  return { enabled: flag !== 'off', maxBytes };
}

/**
 * convPool's output per training image, computed the first time the image is in a batch.
 * Correct only while convKernel and convBias do not change (phase two's frozen base); the
 * images of a batch are computed together as before, those already seen are copied.
 */
export class PooledFeatureCache {
  /** Images the store holds at most. */
  readonly capacity: number;
  private readonly flat: number;
  private readonly pixels: number;
  private readonly shape: [number, number, number];
  /** Dataset row -> slot in `store`, -1 while not cached. */
  private readonly slots: Int32Array;
  private store: Float32Array | null = null;
  private out: Float32Array | null = null;
  private used = 0;
  hits = 0;
  misses = 0;

  constructor(
    private readonly spec: NetworkSpec,
    data: Pick<LabelledImages, 'length' | 'rows' | 'cols'>,
    maxBytes: number,
  ) {
    const { poolRows, poolCols, flat } = featureGeometry(spec);
    this.flat = flat;
    this.pixels = data.rows * data.cols;
    this.shape = [poolRows, poolCols, spec.filters];
    this.capacity = Math.max(0, Math.min(data.length, Math.floor(maxBytes / (flat * 4))));
    this.slots = new Int32Array(data.length).fill(-1);
  }

  /** Images cached so far. */
  get size(): number {
    return this.used;
  }

  /**
   * convPool of the batch's images, [size, poolRows, poolCols, filters]: what
   * convPool(vars, inputTensor(x)) gives, with the images not cached yet computed together
   * and cached while there is room. `x` is the batch as gatherBatch returns it.
   */
  pooled(vars: Pick<NetworkVariables, 'convKernel' | 'convBias'>, batch: Batch, x: Float32Array): tf.Tensor4D {
    const rows = batchRows(batch);
    const size = rows.length;
    const missing = new Uint8Array(size);
    let missingCount = 0;
    for (let i = 0; i < size; i++) {
      if (this.slots[rows.row(i)]! < 0) {
        missing[i] = 1;
        missingCount++;
      }
    }
    this.hits += size - missingCount;
    this.misses += missingCount;
    if (missingCount === size) {
      // Nothing cached (the first epoch): the whole batch as before, its outputs kept as they are.
      const pooled = tf.tidy(() => convPool(vars, inputTensor(x, size, this.spec)));
      if (this.used < this.capacity) this.keep(rows, missing, pooled.dataSync() as Float32Array);
      return pooled;
    }
    let computed: Float32Array | null = null;
    if (missingCount > 0) {
      const subX = new Float32Array(missingCount * this.pixels);
      for (let i = 0, k = 0; i < size; i++) {
        if (missing[i]) subX.set(x.subarray(i * this.pixels, (i + 1) * this.pixels), k++ * this.pixels);
      }
      const pooled = tf.tidy(() => convPool(vars, inputTensor(subX, missingCount, this.spec)));
      computed = (pooled.dataSync() as Float32Array).slice();
      pooled.dispose();
      this.keep(rows, missing, computed);
    }
    const store = this.store!;
    const flat = this.flat;
    // Refilled every step (the tensor made from it is disposed with its step).
    if (this.out?.length !== size * flat) this.out = new Float32Array(size * flat);
    const out = this.out;
    for (let i = 0, k = 0; i < size; i++) {
      if (missing[i]) {
        out.set(computed!.subarray(k * flat, (k + 1) * flat), i * flat);
        k++;
      } else {
        const slot = this.slots[rows.row(i)]!;
        out.set(store.subarray(slot * flat, (slot + 1) * flat), i * flat);
      }
    }
    return tf.tensor4d(out, [size, ...this.shape], 'float32');
  }

  /** Stores the computed outputs (in batch order of the `missing` positions) while there is room. */
  private keep(rows: ReturnType<typeof batchRows>, missing: Uint8Array, values: Float32Array): void {
    const flat = this.flat;
    for (let i = 0, k = 0; i < rows.length; i++) {
      if (!missing[i]) continue;
      const row = rows.row(i);
      // A row twice in one batch (a shuffle that wrapped into the next permutation) is stored once.
      if (this.used < this.capacity && this.slots[row]! < 0) {
        this.store ??= new Float32Array(this.capacity * flat);
        this.store.set(values.subarray(k * flat, (k + 1) * flat), this.used * flat);
        this.slots[row] = this.used++;
      }
      k++;
    }
  }
}
