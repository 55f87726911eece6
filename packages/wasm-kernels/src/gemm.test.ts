import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import fc from 'fast-check';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FusedAdam, registerWasmTrainingKernels } from './index.ts';
import { setGemmKernels, sparseGemm } from './batch-mat-mul.ts';
import { gemmLimits, gemmStats, relaxedFmaAvailable } from './gemm.ts';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/*
 * graft's zero-skipping GEMM must give XNNPACK's products bit for bit (same sum order, see
 * gemm.ts), so every case runs twice on wasm, with the kernel off (the stock XNNPACK path)
 * and on, and compares the bits (Object.is: -0 and +0 differ, NaN equals NaN). Every test
 * also checks the kernel really ran: a silent fallback would compare XNNPACK with itself.
 */

/** Seeded values in [-1, 1), `zeros` of them exactly 0 and `negZeros` exactly -0. */
function values(size: number, seed: number, zeros = 0, negZeros = 0): Float32Array {
  const out = new Float32Array(size);
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  for (let i = 0; i < size; i++) {
    const u = next();
    out[i] = u < zeros ? 0 : u < zeros + negZeros ? -0 : next() * 2 - 1;
  }
  return out;
}

function bitsDiffer(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.max(a.length, b.length);
  let differ = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) differ++;
  return differ;
}

/** f's result with XNNPACK and with graft's GEMM, and how many products the GEMM ran. */
function bothWays(f: () => tf.Tensor): { stock: Float32Array; graft: Float32Array; products: number; shapes: [number[], number[]] } {
  setGemmKernels(false);
  const s = tf.tidy(f);
  setGemmKernels(true);
  const before = gemmStats.products;
  const g = tf.tidy(f);
  const products = gemmStats.products - before;
  const out = { stock: s.dataSync() as Float32Array, graft: g.dataSync() as Float32Array, products, shapes: [s.shape, g.shape] as [number[], number[]] };
  tf.dispose([s, g]);
  return out;
}

function expectSameBits(f: () => tf.Tensor, products = 1): void {
  const r = bothWays(f);
  expect(r.products, 'products computed by graft GEMM').toBe(products);
  expect(r.shapes[1]).toEqual(r.shapes[0]);
  expect(bitsDiffer(r.graft, r.stock), 'elements whose bits differ from XNNPACK').toBe(0);
  // A product of all zeros would match a kernel that writes nothing.
  expect(r.stock.some((v) => v !== 0)).toBe(true);
}

function matrix(rows: number, cols: number, seed: number, zeros = 0.5, negZeros = 0.05): tf.Tensor2D {
  return tf.tensor2d(values(rows * cols, seed, zeros, negZeros), [rows, cols]);
}

/** op(A) is m×k, op(B) k×n; stored transposed when asked. */
function operands(m: number, k: number, n: number, ta: boolean, tb: boolean, seed: number, zeros = 0.5) {
  const a = ta ? matrix(k, m, seed, zeros) : matrix(m, k, seed, zeros);
  const b = tb ? matrix(n, k, seed + 1, 0.1) : matrix(k, n, seed + 1, 0.1);
  return { a, b };
}

beforeAll(async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});

beforeEach(() => {
  // Small shapes too (the default leaves products under 2^20 multiply-adds to XNNPACK).
  sparseGemm.minWork = 0;
  gemmLimits.minWidth = 1;
  gemmLimits.maxDensity = 1;
});

afterEach(() => {
  sparseGemm.minWork = 1 << 20;
  gemmLimits.minWidth = 64;
  gemmLimits.maxDensity = 1;
  gemmLimits.transposed = 'auto';
  gemmLimits.relaxedFma = false;
  setGemmKernels(true);
});

const combos: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

describe('graft GEMM gives XNNPACK bit for bit', () => {
  // Row and column counts around the panel width (32) and the 4-lane vectors, so tails of
  // many widths (1-31 columns: vector and scalar accumulators) run either way round.
  const shapes: [number, number, number][] = [
    [100, 4320, 500], // fc1 forward
    [100, 500, 4320], // fc1 dX
    [1, 9, 1],
    [2, 1, 3],
    [7, 33, 4],
    [5, 40, 5],
    [3, 17, 15],
    [4, 64, 16],
    [9, 21, 17],
    [6, 50, 31],
    [8, 70, 32],
    [5, 30, 33],
    [11, 45, 47],
    [13, 29, 100],
    [33, 20, 7],
    [62, 10, 45],
    [35, 12, 66],
  ];
  for (const [ta, tb] of combos) {
    for (const way of ['never', 'always'] as const) {
      it(`transposeA=${ta} transposeB=${tb} over shapes around the block widths, ${way === 'never' ? 'skipping zeros of A' : 'computed as Cᵀ = Bᵀ·Aᵀ skipping zeros of B'}`, () => {
        gemmLimits.transposed = way;
        const before = gemmStats.transposed;
        for (const [m, k, n] of shapes) {
          // Fewer zeros where a row has only a few terms, so no product is all zeros.
          const { a, b } = operands(m, k, n, ta, tb, m * 7 + k * 3 + n, k < 4 ? 0 : 0.5);
          expectSameBits(() => tf.matMul(a, b, ta, tb));
          tf.dispose([a, b]);
        }
        expect(gemmStats.transposed - before).toBe(way === 'always' ? shapes.length : 0);
      });
    }
  }

  it('with the fused bias and ReLU, or bias alone (the stock fused kernel starts sums from the bias)', () => {
    for (const [ta, tb] of combos) {
      for (const [m, k, n] of [[100, 4320, 500], [7, 90, 37], [3, 11, 4]] as const) {
        const { a, b } = operands(m, k, n, ta, tb, m + k + n);
        const bias = tf.tensor1d(values(n, n + 5));
        for (const activation of ['relu', 'linear'] as const) {
          expectSameBits(() => tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias, activation }));
        }
        expectSameBits(() => tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, activation: 'relu' }));
        // A [1, n] bias broadcasts over rows the same way.
        const bias2d = tf.reshape(bias, [1, n]);
        expectSameBits(() => tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias: bias2d, activation: 'relu' }));
        tf.dispose([a, b, bias, bias2d]);
      }
    }
  });

  it('for any shape, zero density and transposes (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 80 }),
        fc.integer({ min: 1, max: 70 }),
        fc.boolean(),
        fc.boolean(),
        fc.double({ min: 0, max: 0.95, noNaN: true }),
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.constantFrom('none', 'bias', 'bias+relu', 'relu'),
        fc.constantFrom('auto', 'never', 'always'),
        (m, k, n, ta, tb, zeros, seed, epilogue, way) => {
          gemmLimits.transposed = way as 'auto' | 'never' | 'always';
          const a = ta ? tf.tensor2d(values(k * m, seed, zeros, 0.05), [k, m]) : tf.tensor2d(values(m * k, seed, zeros, 0.05), [m, k]);
          const bZeros = (seed % 7) / 8;
          const b = tb ? matrix(n, k, seed + 1, bZeros) : matrix(k, n, seed + 1, bZeros);
          const bias = tf.tensor1d(values(n, seed + 2));
          const f =
            epilogue === 'none'
              ? () => tf.matMul(a, b, ta, tb)
              : () =>
                  tf.fused.matMul({
                    a,
                    b,
                    transposeA: ta,
                    transposeB: tb,
                    bias: epilogue.startsWith('bias') ? bias : undefined,
                    activation: epilogue.endsWith('relu') ? 'relu' : 'linear',
                  });
          const r = bothWays(f);
          tf.dispose([a, b, bias]);
          expect(r.products).toBe(1);
          expect(bitsDiffer(r.graft, r.stock)).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('when A is all zeros, or a row of it is', () => {
    const b = matrix(40, 37, 3, 0);
    const a = tf.tensor2d(values(6 * 40, 4, 0.5), [6, 40]);
    const rowZero = tf.tidy(() => tf.mul(a, tf.tensor2d([1, 0, 1, 1, 0, 1], [6, 1])));
    const bias = tf.tensor1d(values(37, 5));
    const zeros = tf.zeros([6, 40]);
    const r = bothWays(() => tf.matMul(zeros, b));
    expect(r.products).toBe(1);
    expect(bitsDiffer(r.graft, r.stock)).toBe(0);
    expect(r.stock.every((v) => Object.is(v, 0))).toBe(true);
    expectSameBits(() => tf.matMul(rowZero, b));
    expectSameBits(() => tf.fused.matMul({ a: zeros as tf.Tensor2D, b, bias, activation: 'relu' }));
    tf.dispose([a, b, rowZero, bias, zeros]);
  });

  it('keeps NaN and ±Infinity in the operand whose zeros are skipped (they are not zeros)', () => {
    for (const way of ['never', 'always'] as const) {
      gemmLimits.transposed = way;
      const special = (rows: number, cols: number, seed: number) =>
        tf.tensor2d(values(rows * cols, seed, 0.5).map((v, i) => (i % 17 === 3 ? NaN : i % 23 === 5 ? Infinity : i % 29 === 7 ? -Infinity : v)), [rows, cols]);
      // The skipped operand carries the specials, the other is finite.
      const a = way === 'never' ? special(9, 40, 92) : matrix(9, 40, 92, 0.5);
      const b = way === 'never' ? matrix(40, 27, 93, 0.3) : special(40, 27, 93);
      const r = bothWays(() => tf.matMul(a, b));
      expect(r.products).toBe(1);
      expect(bitsDiffer(r.graft, r.stock)).toBe(0);
      expect(r.stock.some((v) => Number.isNaN(v))).toBe(true);
      tf.dispose([a, b]);
    }
  });

  it('leaves a bias holding -0 to XNNPACK (a sum from -0 may keep or lose its sign as zeros are skipped)', () => {
    const { a, b } = operands(5, 30, 9, false, false, 77);
    const bias = tf.tensor1d(values(9, 6).map((v, j) => (j === 4 ? -0 : v)));
    const r = bothWays(() => tf.fused.matMul({ a, b, bias }));
    expect(r.products).toBe(0);
    expect(bitsDiffer(r.graft, r.stock)).toBe(0);
    tf.dispose([a, b, bias]);
  });

  it('hands a denser A than gemmLimits.maxDensity back to XNNPACK (off by default)', () => {
    gemmLimits.maxDensity = 0.8;
    const { a, b } = operands(20, 60, 40, false, false, 78, 0.1);
    const before = gemmStats.tooDense;
    const r = bothWays(() => tf.matMul(a, b));
    expect(r.products).toBe(0);
    expect(gemmStats.tooDense).toBe(before + 1);
    expect(bitsDiffer(r.graft, r.stock)).toBe(0);
    tf.dispose([a, b]);
  });

  it('agrees with the cpu backend within float32 rounding', async () => {
    const { a, b } = operands(30, 700, 90, true, false, 79);
    const [av, bv] = [a.dataSync().slice(), b.dataSync().slice()];
    tf.dispose([a, b]);
    const run = () => tf.matMul(tf.tensor2d(av, [700, 30]), tf.tensor2d(bv, [700, 90]), true, false);
    await tf.setBackend('cpu');
    const cpu = tf.tidy(run);
    const ref = cpu.dataSync().slice();
    cpu.dispose();
    await tf.setBackend('wasm');
    const before = gemmStats.products;
    const got = tf.tidy(run);
    expect(gemmStats.products).toBe(before + 1);
    // Sums of ~350 terms of size ≤ 1: float32 rounding stays far below 1e-4 of the scale.
    let worst = 0;
    let scale = 1;
    got.dataSync().forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - ref[i]!));
      scale = Math.max(scale, Math.abs(ref[i]!));
    });
    got.dispose();
    expect(worst).toBeLessThanOrEqual(1e-4 * scale);
  });

  it('packs a right operand once while the same tensor comes back (a frozen weight), again when it changes', () => {
    gemmLimits.transposed = 'never';
    const x = matrix(30, 200, 82);
    const w = matrix(200, 70, 83, 0);
    const bias = tf.tensor1d(values(70, 84));
    const forward = (weights: tf.Tensor2D) => () => tf.fused.matMul({ a: x, b: weights, bias, activation: 'relu' });
    const before = gemmStats.packs;
    const first = bothWays(forward(w)); // graft packs w
    const again = bothWays(forward(w)); // reused
    expect(gemmStats.packs - before).toBe(1);
    // A new tensor with other values, then w again: each packed afresh.
    const w2 = tf.tidy(() => tf.mul(w, 2)) as tf.Tensor2D;
    const other = bothWays(forward(w2));
    const back = bothWays(forward(w));
    expect(gemmStats.packs - before).toBe(3);
    for (const r of [first, again, other, back]) {
      expect(r.products).toBe(1);
      expect(bitsDiffer(r.graft, r.stock)).toBe(0);
    }
    expect(bitsDiffer(other.graft, first.graft)).toBeGreaterThan(0);
    tf.dispose([x, w, w2, bias]);
  });

  it('leaves products too narrow for skipping to pay (gemmLimits.minWidth) to XNNPACK', () => {
    gemmLimits.minWidth = 64;
    // The conv filter gradient's shape: 25 taps × 30 filters over many positions.
    const a = matrix(25, 3000, 94, 0.8);
    const b = matrix(3000, 30, 95, 0.8);
    const r = bothWays(() => tf.matMul(a, b));
    expect(r.products).toBe(0);
    expect(bitsDiffer(r.graft, r.stock)).toBe(0);
    // Wide on one side is enough: 25 rows × 100 columns goes direct.
    const c = matrix(3000, 100, 96, 0.8);
    expect(bothWays(() => tf.matMul(a, c)).products).toBe(1);
    tf.dispose([a, b, c]);
  });

  it('gives the same bits over more rows than one chunk (ROWS_PER_CHUNK), either way round', () => {
    for (const way of ['never', 'always'] as const) {
      gemmLimits.transposed = way;
      // 300 rows (direct) or 300 columns (transposed): three chunks, the last partial.
      const { a, b } = way === 'never' ? operands(300, 50, 70, false, false, 97) : operands(70, 50, 300, false, false, 98);
      const bT = way === 'always' ? tf.tidy(() => tf.mul(b, tf.cast(tf.greater(tf.randomUniform(b.shape, 0, 1, 'float32', 5), 0.6), 'float32'))) : b;
      expectSameBits(() => tf.matMul(a, bT));
      tf.dispose([a, b, bT]);
    }
  });

  it('leaks no tensors or wasm buffers', () => {
    const { a, b } = operands(20, 50, 40, false, true, 80);
    const bias = tf.tensor1d(values(40, 81));
    const numDataIds = () => (tf.engine().backend as unknown as { numDataIds(): number }).numDataIds();
    const f = () => {
      tf.tidy(() => tf.matMul(a, b, false, true)).dispose();
      tf.tidy(() => tf.fused.matMul({ a, b, transposeB: true, bias, activation: 'relu' })).dispose();
    };
    f();
    const before = [tf.memory().numTensors, tf.memory().numBytes, numDataIds()];
    for (let i = 0; i < 4; i++) f();
    expect([tf.memory().numTensors, tf.memory().numBytes, numDataIds()]).toEqual(before);
    tf.dispose([a, b, bias]);
  });
});

describe('the experimental relaxed-SIMD variant (f32x4.relaxed_madd; benchmarks only, not XNNPACK bits)', () => {
  // Node 24 has relaxed SIMD; on Node 20: node --experimental-wasm-relaxed-simd
  // node_modules/vitest/vitest.mjs run packages/wasm-kernels/src/gemm.test.ts --pool threads
  const available = () => relaxedFmaAvailable(tf.backend() as BackendWasm);
  it('agrees with the exact kernels within float32 rounding of the sums, where the runtime has relaxed SIMD', (ctx) => {
    if (!available()) ctx.skip('this runtime has no relaxed SIMD (Node 20 without --experimental-wasm-relaxed-simd)');
    for (const [ta, tb] of combos) {
      const { a, b } = operands(40, 700, 53, ta, tb, 91);
      gemmLimits.relaxedFma = false;
      const exact = tf.tidy(() => tf.matMul(a, b, ta, tb));
      gemmLimits.relaxedFma = true;
      const before = gemmStats.products;
      const fused = tf.tidy(() => tf.matMul(a, b, ta, tb));
      expect(gemmStats.products).toBe(before + 1);
      const [e, f] = [exact.dataSync(), fused.dataSync()];
      let worst = 0;
      let scale = 1;
      e.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - f[i]!));
        scale = Math.max(scale, Math.abs(v));
      });
      // One rounding less per term of ~350 terms: far below 1e-5 of the scale, and not 0
      // (a bit-identical result would mean the FMA variant did not run).
      expect(worst).toBeLessThanOrEqual(1e-5 * scale);
      expect(worst).toBeGreaterThan(0);
      tf.dispose([a, b, exact, fused]);
    }
  });
});

describe('training with graft GEMM', () => {
  it('gives the same weights, byte for byte, as XNNPACK (the DESIGN.md §1 network, dropout, fused Adam)', () => {
    // As in training: only the fc1 products (the head's are small, the conv filter
    // gradient's 25×30 output too narrow).
    sparseGemm.minWork = 1 << 20;
    gemmLimits.minWidth = 64;
    const batch = 100;
    const steps = 3;
    const shapes: number[][] = [[5, 5, 1, 30], [30], [4320, 500], [500], [500, 9], [9]];
    const init = shapes.map((shape, i) => values(tf.util.sizeFromShape(shape), 90 + i).map((v) => v * 0.1));
    const images = Array.from({ length: steps }, (_, s) => values(batch * 28 * 28, 200 + s).map((v) => Math.max(0, v)));
    const labels = Array.from({ length: steps }, (_, s) => Array.from({ length: batch }, (_, i) => (i * 7 + s) % 9));
    // Dropout as graft draws it: scaled keep masks, keep 0.7, fixed per step.
    const masks = Array.from({ length: steps }, (_, s) => ({
      pool: values(batch * 4320, 300 + s).map((v) => (v * 0.5 + 0.5 < 0.7 ? 1 / 0.7 : 0)),
      fc1: values(batch * 500, 400 + s).map((v) => (v * 0.5 + 0.5 < 0.7 ? 1 / 0.7 : 0)),
    }));

    const train = (gemm: boolean): { weights: Float32Array[]; products: number } => {
      setGemmKernels(gemm);
      const vars = init.map((v, i) => tf.variable(tf.tensor(v, shapes[i])));
      const adam = new FusedAdam(vars, { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, [0.001 / 3, 0, 0.001 / 3, 0, 0.001 / 3, 0], true);
      const before = gemmStats.products;
      for (let s = 0; s < steps; s++) {
        const loss = tf.tidy(() => {
          const x = tf.tensor4d(images[s]!, [batch, 28, 28, 1]);
          const y = tf.oneHot(tf.tensor1d(labels[s]!, 'int32'), 9);
          return adam.minimize(() => {
            const [w1, b1, w3, b3, w4, b4] = vars as unknown as [tf.Tensor4D, tf.Tensor, tf.Tensor2D, tf.Tensor, tf.Tensor2D, tf.Tensor];
            const conv = tf.relu(tf.add(tf.conv2d(x, w1, 1, 'valid'), b1)) as tf.Tensor4D;
            const pool = tf.mul(tf.reshape(tf.maxPool(conv, 2, 2, 'same'), [batch, 4320]), tf.tensor2d(masks[s]!.pool, [batch, 4320]));
            const fc1 = tf.mul(tf.relu(tf.add(tf.matMul(pool as tf.Tensor2D, w3), b3)), tf.tensor2d(masks[s]!.fc1, [batch, 500]));
            return tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(fc1 as tf.Tensor2D, w4), b4)) as tf.Scalar;
          });
        });
        loss.dispose();
      }
      const out = { weights: vars.map((v) => v.dataSync().slice() as Float32Array), products: gemmStats.products - before };
      adam.dispose();
      tf.dispose(vars);
      return out;
    };

    const stock = train(false);
    const graft = train(true);
    // Three products a step: fc1's forward, dX and dW.
    expect(graft.products).toBe(3 * steps);
    expect(stock.products).toBe(0);
    graft.weights.forEach((w, i) => {
      expect(Buffer.from(w.buffer).equals(Buffer.from(stock.weights[i]!.buffer)), `variable ${i} [${shapes[i]}]`).toBe(true);
      expect(bitsDiffer(w, init[i]!), `variable ${i} changed in training`).toBeGreaterThan(0);
    });
  });
});
