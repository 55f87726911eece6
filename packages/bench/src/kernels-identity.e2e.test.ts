import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@graft/core';
import { SEED_NETWORK, buildNetwork, initBackend } from '@graft/model';
import { ALL_LAYERS, HEAD_ONLY, PHASE_ONE_DEFAULTS, PHASE_TWO_DEFAULTS, trainLoop } from '@graft/train';
import { gemmStats, setGemmKernels, setMaxPoolGradSimd } from '@graft/wasm-kernels';
import { readPairedData } from './paired.ts';
import type { PairedData } from './paired.ts';

/*
 * graft's zero-skipping GEMM and SIMD MaxPoolGrad promise XNNPACK's and the JavaScript
 * loop's bits. Here the stages' own training loop, recipes and dropout run on real MNIST
 * twice, with those kernels off and on, and the weights must be the same bytes: phase one
 * (every layer, contiguous batches) and a head-only phase two on the full training set.
 */

const STEPS = 12;
let data: PairedData;

beforeAll(async () => {
  await initBackend('wasm');
  data = await readPairedData();
});

async function train(phase: 'one' | 'two', kernels: boolean): Promise<{ weights: Uint8Array[]; products: number }> {
  setGemmKernels(kernels);
  setMaxPoolGradSimd(kernels);
  const before = gemmStats.products;
  try {
    const set = phase === 'one' ? data.trainNine : data.train;
    const hyper = phase === 'one' ? PHASE_ONE_DEFAULTS : PHASE_TWO_DEFAULTS;
    const model = buildNetwork({ ...SEED_NETWORK, numClasses: phase === 'one' ? 9 : 10, dropoutRate: 1 - hyper.keepProb }, new Rng(0));
    const batches = Array.from({ length: STEPS }, (_, i) =>
      phase === 'one' ? ([i * 100, (i + 1) * 100] as const) : Uint32Array.from({ length: 100 }, (_, j) => (i * 7919 + j * 104729) % set.length),
    );
    await trainLoop({
      model,
      train: set,
      validation: set,
      epochs: 1,
      plan: { batchesPerEpoch: STEPS, batches: () => batches },
      rng: new Rng(1),
      learningRate: hyper.learningRate,
      l2: hyper.l2,
      keepProb: hyper.keepProb,
      evalEvery: STEPS + 1,
      evaluation: 'inline',
      ...(phase === 'one' ? ALL_LAYERS : HEAD_ONLY),
    });
    const weights = model.getWeights().map((w) => new Uint8Array((w.dataSync() as Float32Array).slice().buffer));
    model.dispose();
    return { weights, products: gemmStats.products - before };
  } finally {
    setGemmKernels(true);
    setMaxPoolGradSimd(true);
  }
}

describe("graft's wasm kernels in the stages' training loop", () => {
  for (const phase of ['one', 'two'] as const) {
    it(`phase ${phase}: ${STEPS} steps give byte-identical weights with graft's GEMM and SIMD MaxPoolGrad as without`, async () => {
      const off = await train(phase, false);
      const on = await train(phase, true);
      expect(off.products).toBe(0);
      // Phase one: fc1 forward, dX and dW each step; phase two: the frozen base's fc1
      // forward (conv + pool may come from the cache, fc1 runs every step).
      expect(on.products).toBe(phase === 'one' ? 3 * STEPS : STEPS);
      expect(on.weights.length).toBe(off.weights.length);
      on.weights.forEach((w, i) => expect(Buffer.from(w).equals(Buffer.from(off.weights[i]!)), `weight ${i}`).toBe(true));
      expect(tf.memory().numTensors).toBeLessThan(100);
    });
  }
});
