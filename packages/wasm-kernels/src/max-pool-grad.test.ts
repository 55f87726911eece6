import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerWasmTrainingKernels } from './index.ts';
import { maxPoolGradSimd } from './max-pool-grad.ts';

/*
 * The SIMD MaxPoolGrad (2×2 stride 2, windows tiling the input) against the JavaScript
 * loop it replaces, which kernels.test.ts checks against the cpu backend: the same bits
 * (Object.is), on inputs built to hit every rule — ties (ReLU zeros), NaNs anywhere in a
 * window, all-NaN windows, -0 gradients — and channel counts that are not a multiple of 4.
 */

beforeAll(async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});

afterEach(() => {
  maxPoolGradSimd.enabled = true;
});

/** Values from a small set so windows tie often: 0 (ReLU), -0, NaN, a few numbers. */
function input(size: number, seed: number, nanShare: number): Float32Array {
  const pool = [0, -0, 1, 2, 0.5, -1, 3];
  const out = new Float32Array(size);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 4294967296;
    out[i] = u < nanShare ? NaN : pool[Math.floor(((u - nanShare) / (1 - nanShare)) * pool.length)]!;
  }
  return out;
}

function gradient(x: Float32Array, dy: Float32Array, shape: [number, number, number, number], pad: 'same' | 'valid'): Float32Array {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, shape);
    const dyt = tf.tensor4d(dy, [shape[0], shape[1] / 2, shape[2] / 2, shape[3]]);
    const y = tf.maxPool(xt, 2, 2, pad);
    return tf.engine().runKernel('MaxPoolGrad', { dy: dyt, input: xt, output: y }, { filterSize: 2, strides: 2, pad } as never) as tf.Tensor;
  }).dataSync() as Float32Array;
}

function bothWays(x: Float32Array, dy: Float32Array, shape: [number, number, number, number], pad: 'same' | 'valid') {
  maxPoolGradSimd.enabled = false;
  const js = gradient(x, dy, shape, pad);
  maxPoolGradSimd.enabled = true;
  const before = maxPoolGradSimd.calls;
  const simd = gradient(x, dy, shape, pad);
  return { js, simd, simdCalls: maxPoolGradSimd.calls - before };
}

const differing = (a: Float32Array, b: Float32Array) => a.reduce((n, v, i) => n + (Object.is(v, b[i]) ? 0 : 1), 0);

describe('MaxPoolGrad 2x2 stride 2 in wasm SIMD', () => {
  it("gives the JavaScript kernel's bits on this project's pool (100x24x24x30)", () => {
    const shape: [number, number, number, number] = [100, 24, 24, 30];
    const x = input(100 * 24 * 24 * 30, 1, 0.01);
    const dy = input(100 * 12 * 12 * 30, 2, 0).map((v, i) => (i % 7 === 0 ? -0 : v));
    const r = bothWays(x, dy, shape, 'same');
    expect(r.simdCalls).toBe(1);
    expect(differing(r.simd, r.js)).toBe(0);
    expect(r.js.some((v) => v !== 0)).toBe(true);
  });

  it('for any even size, channel count >= 4 and share of NaNs (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 4, max: 13 }),
        fc.constantFrom(0, 0.1, 0.6, 1),
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.constantFrom('same', 'valid'),
        (b, oh, ow, c, nanShare, seed, pad) => {
          const shape: [number, number, number, number] = [b, 2 * oh, 2 * ow, c];
          const x = input(b * 4 * oh * ow * c, seed, nanShare);
          const dy = input(b * oh * ow * c, seed + 1, 0);
          const r = bothWays(x, dy, shape, pad as 'same' | 'valid');
          expect(r.simdCalls).toBe(1);
          expect(differing(r.simd, r.js)).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('leaves fewer than 4 channels to the JavaScript loop', () => {
    const r = bothWays(input(2 * 4 * 4 * 3, 5, 0), input(2 * 2 * 2 * 3, 6, 0), [2, 4, 4, 3], 'valid');
    expect(r.simdCalls).toBe(0);
    expect(differing(r.simd, r.js)).toBe(0);
  });
});
