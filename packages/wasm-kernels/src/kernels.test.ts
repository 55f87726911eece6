// The union package, as the training code uses it: tfjs-core alone registers no gradients.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TFJS_VERSION, assertTfjsVersion, registerWasmTrainingKernels, wasmTrainingKernelsRegistered } from './index.ts';
import { patchLimit } from './conv2d-backprop-filter.ts';

/*
 * Every wasm result is compared with the cpu backend (plain JS, the tfjs reference) on
 * the same seeded random inputs. Tolerance: max |wasm − cpu| ≤ 1e-4 × max(1, max |cpu|),
 * i.e. 1e-4 relative to the largest reference value; float32 sums of a few thousand terms
 * stay well inside it, while any indexing mistake is off by O(1).
 */
const TOLERANCE = 1e-4;

/** Deterministic inputs (no dependency on either backend's RNG). */
function values(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

function input(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(values(tf.util.sizeFromShape(shape), seed), shape);
}

/** Runs `f` on a backend and returns its result's values and shape; leaves wasm selected. */
async function runOn(backend: 'cpu' | 'wasm', f: () => tf.Tensor): Promise<{ data: Float32Array; shape: number[] }> {
  await tf.setBackend(backend);
  try {
    const result = tf.tidy(f);
    const out = { data: result.dataSync() as Float32Array, shape: result.shape };
    result.dispose();
    return out;
  } finally {
    await tf.setBackend('wasm');
  }
}

async function expectSameOnBothBackends(f: () => tf.Tensor): Promise<void> {
  const cpu = await runOn('cpu', f);
  const wasm = await runOn('wasm', f);
  expect(wasm.shape).toEqual(cpu.shape);
  let scale = 1;
  for (const v of cpu.data) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < cpu.data.length; i++) worst = Math.max(worst, Math.abs(wasm.data[i]! - cpu.data[i]!));
  expect(worst).toBeLessThanOrEqual(TOLERANCE * scale);
  // A result of all zeros would match a broken kernel that writes nothing.
  expect(cpu.data.some((v) => v !== 0)).toBe(true);
}

type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

/** The kernel under test, called directly (tfjs has no public op for it). */
function conv2dBackpropFilter(
  x: tf.Tensor,
  dy: tf.Tensor,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: Pad,
): tf.Tensor {
  return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides, pad, dataFormat: 'NHWC', filterShape } as never) as tf.Tensor;
}

function wasmDataIds(): number {
  return (tf.engine().backend as unknown as { numDataIds(): number }).numDataIds();
}

/** Memory after `f` has run `times` times, once warmed up; tensors, bytes and backend buffers. */
function memoryAfter(f: () => tf.Tensor, times: number): [number, number, number] {
  for (let i = 0; i < times; i++) tf.tidy(f).dispose();
  const m = tf.memory();
  return [m.numTensors, m.numBytes, wasmDataIds()];
}

beforeAll(async () => {
  registerWasmTrainingKernels();
  registerWasmTrainingKernels(); // idempotent: must not wrap its own wrappers
  await tf.setBackend('wasm');
  await tf.ready();
});

afterEach(() => {
  patchLimit.floats = 1 << 24;
});

describe('registerWasmTrainingKernels', () => {
  it('registers the kernels once, keeping the stock kernel underneath', () => {
    expect(wasmTrainingKernelsRegistered()).toBe(true);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    registerWasmTrainingKernels();
    // Wrapping a wrapper would still compute the right values but recurse once more per
    // call; the stock path must still be the one reached for an untransposed product.
    const y = tf.matMul(tf.ones([2, 3]), tf.ones([3, 4]));
    expect(Array.from(y.dataSync())).toEqual(new Array(8).fill(3));
  });

  it('accepts only the pinned tfjs version (the kernels read its internals)', () => {
    expect(tf.version_core).toBe(TFJS_VERSION);
    expect(() => assertTfjsVersion()).not.toThrow();
    expect(() => assertTfjsVersion({ '@tensorflow/tfjs-core': TFJS_VERSION, '@tensorflow/tfjs-backend-wasm': '4.23.0' })).toThrow(
      expect.objectContaining({ code: 'WASM_TFJS_VERSION', message: expect.stringContaining('@tensorflow/tfjs-backend-wasm 4.23.0') }),
    );
  });

  it('pins tfjs exactly in package.json, the version registration checks', async () => {
    const { default: pkg } = await import('../package.json', { with: { type: 'json' } });
    for (const name of ['@tensorflow/tfjs', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm'] as const) {
      expect(pkg.dependencies[name]).toBe(TFJS_VERSION);
    }
  });
});

describe('Conv2DBackpropFilter on wasm matches cpu', () => {
  type Case = {
    name: string;
    x: [number, number, number, number];
    filter: [number, number, number, number];
    strides: number | [number, number];
    pad: Pad;
  };
  const cases: Case[] = [
    { name: 'valid, stride 1', x: [2, 7, 7, 1], filter: [3, 3, 1, 4], strides: 1, pad: 'valid' },
    { name: 'same, stride 2, 3 in-channels', x: [2, 8, 9, 3], filter: [3, 2, 3, 5], strides: 2, pad: 'same' },
    { name: 'same, stride 3, even filter', x: [3, 10, 10, 2], filter: [4, 4, 2, 3], strides: 3, pad: 'same' },
    // tfjs 4.22 sizes a numerically padded conv from the filter's and stride's height alone,
    // and the stock wasm Conv2D then writes past its output (heap corruption) unless both
    // are square; so numeric padding is tested square, explicit padding covers the rest.
    { name: 'numeric pad 1, stride 2', x: [2, 7, 6, 2], filter: [3, 3, 2, 3], strides: 2, pad: 1 },
    {
      name: 'explicit asymmetric padding',
      x: [1, 6, 5, 2],
      filter: [2, 3, 2, 3],
      strides: [1, 2],
      pad: [[0, 0], [1, 2], [0, 1], [0, 0]],
    },
    { name: 'filter as large as the padded input', x: [2, 4, 4, 1], filter: [5, 5, 1, 2], strides: 1, pad: 'same' },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      // Not from a wasm forward conv: see the numeric-padding note above.
      const dyShape = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad).outShape;
      await expectSameOnBothBackends(() =>
        conv2dBackpropFilter(
          input(c.x, 1),
          input(dyShape, 2),
          c.filter,
          c.strides,
          c.pad,
        ),
      );
    });
  }

  it('processes large batches in chunks with the same result', async () => {
    patchLimit.floats = 9 * 36 * 2; // two batch entries' patches per chunk, batch of 5
    await expectSameOnBothBackends(() =>
      conv2dBackpropFilter(input([5, 8, 8, 1], 3), input([5, 6, 6, 4], 4), [3, 3, 1, 4], 1, 'valid'),
    );
  });

  it("gives tf.grad of conv2d w.r.t. the filter (this project's conv layer)", async () => {
    const x = values(4 * 28 * 28, 5);
    const f = values(5 * 5 * 30, 6);
    const w = values(4 * 24 * 24 * 30, 7);
    await expectSameOnBothBackends(() => {
      const xt = tf.tensor4d(x, [4, 28, 28, 1]);
      const wt = tf.tensor4d(w, [4, 24, 24, 30]);
      const grad = tf.grad((filter: tf.Tensor) => tf.sum(tf.mul(tf.relu(tf.conv2d(xt, filter as tf.Tensor4D, 1, 'valid')), wt)));
      return grad(tf.tensor4d(f, [5, 5, 1, 30]));
    });
  });

  it('rejects dilation and NCHW with a clear error', () => {
    const x = tf.zeros([1, 5, 5, 1]);
    const dy = tf.zeros([1, 3, 3, 2]);
    const attrs = { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, 1, 2] };
    expect(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, dilations: 2 })).toThrow(
      /only dilation 1 is supported/,
    );
    expect(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, dataFormat: 'NCHW' })).toThrow(
      /only NHWC/,
    );
    tf.dispose([x, dy]);
  });

  it('leaks no tensors or wasm buffers', () => {
    const f = () => conv2dBackpropFilter(input([3, 9, 9, 2], 8), input([3, 5, 5, 3], 9), [3, 3, 2, 3], 2, 'same');
    const before = memoryAfter(f, 2);
    expect(memoryAfter(f, 5)).toEqual(before);
    patchLimit.floats = 1; // chunked path allocates per chunk
    const chunked = memoryAfter(f, 2);
    expect(memoryAfter(f, 5)).toEqual(chunked);
  });
});

describe('MaxPoolGrad on wasm matches cpu', () => {
  const cases: { name: string; x: [number, number, number, number]; size: number | [number, number]; strides: number | [number, number]; pad: 'valid' | 'same' | number }[] = [
    { name: "2x2 stride 2 'same' on an even input (this project's pool)", x: [3, 8, 8, 5], size: 2, strides: 2, pad: 'same' },
    { name: "2x2 stride 2 'same' on an odd input (padded edge)", x: [2, 7, 9, 3], size: 2, strides: 2, pad: 'same' },
    { name: "3x3 stride 2 'valid' (overlapping windows)", x: [2, 9, 9, 4], size: 3, strides: 2, pad: 'valid' },
    { name: "3x2 strides [1, 2] 'same'", x: [1, 6, 7, 2], size: [3, 2], strides: [1, 2], pad: 'same' },
    { name: 'numeric pad 1, 3x3 stride 2', x: [2, 7, 7, 3], size: 3, strides: 2, pad: 1 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      await expectSameOnBothBackends(() => {
        const w = input(tf.maxPool(tf.zeros(c.x) as tf.Tensor4D, c.size, c.strides, c.pad).shape, 31);
        const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(x as tf.Tensor4D, c.size, c.strides, c.pad), w)));
        return g(input(c.x, 32));
      });
    });
  }

  it('sends a tie to the first maximum of the window, like cpu', async () => {
    // After ReLU whole windows are 0; the gradient must land on one pixel, the first.
    const x = tf.tensor4d([0, 0, 0, 0, 1, 1, 0, 1, 2, 2, 2, 2, 0, 0, 0, 0], [1, 4, 4, 1]);
    await expectSameOnBothBackends(() => tf.grad((t: tf.Tensor) => tf.sum(tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid')))(x));
  });

  it('never sends the gradient to a NaN, like cpu', async () => {
    // Windows (2x2, valid): NaN first then numbers; all NaN; NaN in the middle.
    const x = tf.tensor4d([NaN, 1, 5, NaN, 2, 3, NaN, NaN, 0, 1, 4, NaN, NaN, 7, 2, 3], [1, 4, 4, 1]);
    for (const size of [2, 3] as const) {
      await expectSameOnBothBackends(() =>
        tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, size, 1, 'valid'), 2)))(x),
      );
    }
  });

  it('leaks no tensors or wasm buffers', () => {
    const f = () => tf.grad((x: tf.Tensor) => tf.sum(tf.maxPool(x as tf.Tensor4D, 2, 2, 'same')))(input([2, 6, 6, 3], 33));
    const before = memoryAfter(f, 2);
    expect(memoryAfter(f, 5)).toEqual(before);
  });
});

describe('Identity, Cast and Sum on wasm', () => {
  it('clones share the buffer yet survive the original', () => {
    const x = input([3, 4], 41);
    const before = wasmDataIds();
    const y = tf.clone(x);
    const z = tf.cast(y, 'float32');
    expect(wasmDataIds()).toBe(before); // no new buffer
    const expected = Array.from(x.dataSync());
    x.dispose();
    y.dispose();
    expect(Array.from(z.dataSync())).toEqual(expected);
    z.dispose();
    expect(wasmDataIds()).toBe(before - 1); // the last reference frees it
  });

  it('casts to another dtype like cpu', async () => {
    await expectSameOnBothBackends(() => tf.cast(tf.cast(tf.mul(input([5, 7], 42), 10), 'int32'), 'float32'));
  });

  const sums: [string, number[], number | number[] | undefined, boolean][] = [
    ['leading axes (conv bias gradient)', [4, 5, 6, 3], [0, 1, 2], false],
    ['leading axes, keepDims', [4, 5, 6, 3], [1, 0], true],
    ['axis 0 of a matrix (dense bias gradient)', [30, 7], 0, false],
    ['negative axes', [3, 4, 5], [-3, -2], false],
    ['all axes', [3, 4, 5], undefined, false],
    ['inner axis (stock kernel)', [3, 4, 5], 2, true],
    ['middle axis (stock kernel)', [3, 4, 5], 1, false],
  ];
  for (const [name, shape, axis, keepDims] of sums) {
    it(`sums over ${name} like cpu`, async () => {
      await expectSameOnBothBackends(() => tf.sum(input(shape, 43), axis, keepDims));
    });
  }

  it('leaks no tensors or wasm buffers', () => {
    for (const f of [
      () => tf.clone(input([20, 30], 44)),
      () => tf.cast(input([20, 30], 44), 'float32'),
      () => tf.sum(input([6, 20, 30], 44), [0, 1]),
    ]) {
      const before = memoryAfter(f, 2);
      expect(memoryAfter(f, 5)).toEqual(before);
    }
  });
});

describe('BatchMatMul on wasm matches cpu', () => {
  const combos: [boolean, boolean][] = [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ];
  // [batch dims of a, batch dims of b, m, k, n]
  const shapes: [number[], number[], number, number, number][] = [
    [[], [], 33, 40, 37], // 2-D, fast path
    [[], [], 1, 9, 5], // unit dims: transposes are free views
    [[], [], 6, 1, 4],
    [[3], [3], 40, 50, 45], // batched, one fast product per entry
    [[2, 2], [2, 2], 4, 5, 3], // batched and tiny: stock loop
    [[3], [1], 20, 30, 25], // shared right operand: folded into rows
    [[1], [2], 20, 30, 25], // shared left operand: broadcast per entry
    [[], [], 4, 60, 300], // few rows, big right operand: computed as (op(B)ᵀ op(A)ᵀ)ᵀ
    [[], [], 300, 60, 4], // few columns: computed directly
  ];
  for (const [ta, tb] of combos) {
    for (const [ba, bb, m, k, n] of shapes) {
      it(`transposeA=${ta} transposeB=${tb} a=[${ba}]+${m}x${k} b=[${bb}]+${k}x${n}`, async () => {
        const aShape = [...ba, ...(ta ? [k, m] : [m, k])];
        const bShape = [...bb, ...(tb ? [n, k] : [k, n])];
        await expectSameOnBothBackends(() => tf.matMul(input(aShape, 11), input(bShape, 12), ta, tb));
      });
    }
  }

  it('gives the same product when the right operand is reused (packed once, then cached)', async () => {
    const w = values(60 * 300, 21);
    await expectSameOnBothBackends(() => {
      const wt = tf.tensor2d(w, [60, 300]);
      const x = input([4, 60], 22);
      // First use goes transposed, later uses direct on XNNPACK's cached packing.
      return tf.stack([tf.matMul(x, wt), tf.matMul(tf.neg(x), wt), tf.matMul(x, wt)]);
    });
  });

  it('fused matMul with bias and relu, transposed, matches cpu', async () => {
    for (const [ta, tb] of combos) {
      await expectSameOnBothBackends(() =>
        tf.fused.matMul({
          a: input(ta ? [30, 20] : [20, 30], 13) as tf.Tensor2D,
          b: input(tb ? [25, 30] : [30, 25], 14) as tf.Tensor2D,
          transposeA: ta,
          transposeB: tb,
          bias: input([25], 15),
          activation: 'relu',
        }),
      );
    }
  });

  it("gives the dense layer's gradients (both operands) like cpu", async () => {
    for (const wrt of [0, 1]) {
      await expectSameOnBothBackends(() => {
        const g = tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.square(tf.relu(tf.matMul(x, w)))));
        return g([input([20, 60], 16), input([60, 35], 17)])[wrt]!;
      });
    }
  });

  it('leaks no tensors or wasm buffers', () => {
    const cases = [
      () => tf.matMul(input([40, 30], 1), input([40, 20], 2), true, false),
      () => tf.matMul(input([2, 30, 40], 1), input([2, 20, 40], 2), false, true),
      () => tf.matMul(input([2, 40, 30], 1), input([40, 20], 2), true, false),
      () => tf.matMul(input([30, 40], 1), input([3, 40, 40], 2)),
      () => tf.fused.matMul({ a: input([40, 30], 1) as tf.Tensor2D, b: input([20, 40], 2) as tf.Tensor2D, transposeA: true, transposeB: true, bias: input([20], 3) }),
    ];
    for (const f of cases) {
      const before = memoryAfter(f, 2);
      expect(memoryAfter(f, 5)).toEqual(before);
    }
  });
});

describe("the project's network (DESIGN.md §1) on wasm", () => {
  it('gets the same gradients for every variable as on cpu', async () => {
    const batch = 3;
    const x = values(batch * 28 * 28, 51).map((v) => (v + 1) / 2);
    const shapes: number[][] = [[5, 5, 1, 30], [30], [4320, 500], [500], [500, 9], [9]];
    const init = shapes.map((shape, i) => values(tf.util.sizeFromShape(shape), 60 + i).map((v) => v * 0.1));
    const gradients = (): tf.Tensor[] => {
      const xt = tf.tensor4d(x, [batch, 28, 28, 1]);
      const labels = tf.oneHot(tf.tensor1d([1, 4, 8], 'int32'), 9);
      const loss = (...vars: tf.Tensor[]) => {
        const [w1, b1, w3, b3, w4, b4] = vars as [tf.Tensor4D, tf.Tensor, tf.Tensor2D, tf.Tensor, tf.Tensor2D, tf.Tensor];
        const conv = tf.relu(tf.add(tf.conv2d(xt, w1, 1, 'valid'), b1)) as tf.Tensor4D;
        const pool = tf.reshape(tf.maxPool(conv, 2, 2, 'same'), [batch, 4320]);
        const fc = tf.relu(tf.add(tf.matMul(pool as tf.Tensor2D, w3), b3)) as tf.Tensor2D;
        const logits = tf.add(tf.matMul(fc, w4), b4);
        const l2 = tf.addN([w1, w3, w4].map((w) => tf.div(tf.sum(tf.square(w)), 2)));
        return tf.add(tf.losses.softmaxCrossEntropy(labels, logits), tf.mul(0.001 / 3, l2)) as tf.Scalar;
      };
      return tf.grads(loss)(init.map((v, i) => tf.tensor(v, shapes[i])));
    };
    const all = () => tf.concat(gradients().map((g) => tf.reshape(g, [-1])));
    const [cpu, wasm] = [await runOn('cpu', all), await runOn('wasm', all)];
    // Each variable against its own scale (1e-4 × its largest cpu gradient, at least 1e-3):
    // the bias gradients are far smaller than the kernels'.
    let offset = 0;
    for (const shape of shapes) {
      const size = tf.util.sizeFromShape(shape);
      const ref = cpu.data.subarray(offset, offset + size);
      const got = wasm.data.subarray(offset, offset + size);
      let scale = 1e-3;
      let worst = 0;
      for (let i = 0; i < size; i++) {
        scale = Math.max(scale, Math.abs(ref[i]!));
        worst = Math.max(worst, Math.abs(got[i]! - ref[i]!));
      }
      expect(worst, `gradient of the [${shape}] variable`).toBeLessThanOrEqual(TOLERANCE * scale);
      expect(ref.some((v) => v !== 0)).toBe(true);
      offset += size;
    }
  });
});
