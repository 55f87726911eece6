import { contiguousBatches, epochPermutation } from '@graft/data';
import type { Rng } from '@graft/core';
import type { Batch } from '@graft/model';
import type { BatchPlan } from './train-loop.ts';

function limit<T>(items: T[], max: number | undefined): T[] {
  return max === undefined ? items : items.slice(0, max);
}

/**
 * The seed's phase-one batching: contiguous, in file order, same every epoch, tail
 * dropped (`contiguousBatches`). Draws nothing from the rng.
 */
export function contiguousPlan(n: number, batchSize: number, maxBatchesPerEpoch?: number): BatchPlan {
  const batches = limit(contiguousBatches(n, batchSize), maxBatchesPerEpoch);
  return { batchesPerEpoch: batches.length, batches: () => batches };
}

/**
 * TF's `next_batch` with shuffling: a fresh permutation per epoch, cut into batches.
 * When an epoch asks for more rows than the set has, further permutations are appended
 * (as next_batch carries on into its next pass) so every batch is full.
 */
export function shuffledPlan(n: number, batchSize: number, batchesPerEpoch: number): BatchPlan {
  if (n < 1) throw new RangeError('shuffledPlan: the training set is empty');
  return {
    batchesPerEpoch,
    batches(_epoch: number, rng: Rng): Batch[] {
      const needed = batchesPerEpoch * batchSize;
      const order = new Uint32Array(needed);
      for (let filled = 0; filled < needed; ) {
        const perm = epochPermutation(n, rng);
        const take = Math.min(perm.length, needed - filled);
        order.set(perm.subarray(0, take), filled);
        filled += take;
      }
      return Array.from({ length: batchesPerEpoch }, (_, i) => order.subarray(i * batchSize, (i + 1) * batchSize));
    },
  };
}

/** Whole-epoch shuffling for phase one's `shuffle: true`: as many full batches as fit, tail dropped. */
export function shuffledEpochPlan(n: number, batchSize: number, maxBatchesPerEpoch?: number): BatchPlan {
  const full = Math.floor(n / batchSize);
  return shuffledPlan(n, batchSize, maxBatchesPerEpoch === undefined ? full : Math.min(full, maxBatchesPerEpoch));
}
