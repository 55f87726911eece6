import type { Rng } from '@graft/core';

/**
 * Batch boundaries exactly as the seed notebook's `zip(range(0, n-b, b), range(b, n, b))`:
 * `[k*b, (k+1)*b]` for every k with `(k+1)*b < n` (strictly). That drops the partial
 * tail and, when n is a multiple of b, the last full batch too (55,000 rows give 549
 * batches, not 550). Reproduced on purpose: the reference results were trained that way.
 */
export function contiguousBatches(n: number, batchSize: number): Array<[number, number]> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`contiguousBatches: batch size must be a positive integer, got ${batchSize}`);
  }
  if (!Number.isInteger(n)) throw new RangeError(`contiguousBatches: row count must be an integer, got ${n}`);
  const batches: Array<[number, number]> = [];
  for (let end = batchSize; end < n; end += batchSize) batches.push([end - batchSize, end]);
  return batches;
}

/**
 * The row order of one epoch of TF's `DataSet.next_batch` with shuffling: a fresh
 * uniform permutation of 0..n-1 at the start of every epoch (including the first).
 * TF also stitches the previous epoch's tail onto the next epoch's head when n is not
 * a multiple of the batch size; MNIST's 55,000 / 100 never hits that, so callers that
 * need it must handle it themselves.
 */
export function epochPermutation(n: number, rng: Rng): Uint32Array {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`epochPermutation: n must be a non-negative integer, got ${n}`);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return rng.shuffle(order);
}
