import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerWasmTrainingKernels } from './index.ts';
import { sumRows, sumRowsSimd } from './copy-free-kernels.ts';

/*
 * The SIMD column sums (Sum over leading axes: the bias gradients) against the JavaScript
 * sumRows they replace, which kernels.test.ts checks against the cpu backend: the same
 * float32 bits, on values built so that any other order of the double additions shows
 * (a mutation that swaps two rows of a block fails these tests).
 */

beforeAll(async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});

afterEach(() => {
  sumRowsSimd.enabled = true;
});

/**
 * Values from a small set of magnitudes 1e-20 to 1e30 with both signs, so large terms often
 * cancel exactly: (1e30 + 1) - 1e30 is 0 in doubles but (1e30 - 1e30) + 1 is 1, so any other
 * order of the additions shows in the float32 result.
 */
function values(size: number, seed: number): Float32Array {
  const pool = [1e30, -1e30, 1, -1, 3e15, -3e15, 0.1, 7e-20, 2.5e7, -2.5e7];
  const out = new Float32Array(size);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = pool[(s >>> 8) % pool.length]!;
  }
  return out;
}

/** tf.sum over the leading axes on wasm, with the SIMD path, and the JavaScript sums rounded to float32. */
function both(rows: number, cols: number, seed: number): { simd: Float32Array; js: Float32Array; calls: number } {
  const x = values(rows * cols, seed);
  const before = sumRowsSimd.calls;
  const simd = tf.tidy(() => tf.sum(tf.tensor2d(x, [rows, cols]), 0)).dataSync() as Float32Array;
  return { simd, js: Float32Array.from(sumRows(x, rows, cols)), calls: sumRowsSimd.calls - before };
}

const differing = (a: Float32Array, b: Float32Array) => a.reduce((n, v, i) => n + (Object.is(v, b[i]) ? 0 : 1), 0);

describe('Sum over leading axes in wasm SIMD', () => {
  it("gives the JavaScript sums' bits on the conv bias gradient's shape (57600 x 30) and the dense ones", () => {
    for (const [rows, cols] of [[57600, 30], [100, 500], [100, 9]] as const) {
      const r = both(rows, cols, rows + cols);
      expect(r.calls).toBe(1);
      expect(differing(r.simd, r.js)).toBe(0);
    }
  });

  it('for any row and column count (property: block of eight rows, pairs, odd last column, tail rows)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 13 }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), (rows, cols, seed) => {
        const r = both(rows, cols, seed);
        expect(r.calls).toBe(1);
        expect(differing(r.simd, r.js)).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('uses the JavaScript sums when switched off, with the same result', () => {
    const on = both(33, 7, 5);
    sumRowsSimd.enabled = false;
    const off = both(33, 7, 5);
    expect(off.calls).toBe(0);
    expect(differing(off.simd, on.simd)).toBe(0);
  });
});
