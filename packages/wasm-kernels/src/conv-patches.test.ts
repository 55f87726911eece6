import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerWasmTrainingKernels } from './index.ts';
import { patchCopy } from './conv2d-backprop-filter.ts';

/*
 * The filter gradient's patch matrix filled by wasm run copies against the JavaScript
 * copies (kernels.test.ts checks the kernel against cpu): a copy changes no bits, so the
 * gradients must be identical, and the wasm path must really have run.
 */

beforeAll(async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});

afterEach(() => {
  patchCopy.wasm = true;
});

function seeded(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let s = seed;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

function filterGradient(xShape: [number, number, number, number], filter: [number, number, number, number], pad: 'valid' | 'same', wasm: boolean) {
  patchCopy.wasm = wasm;
  const before = patchCopy.calls;
  const dyShape = tf.backend_util.computeConv2DInfo(xShape, filter, 1, 1, pad).outShape;
  const out = tf.tidy(() =>
    tf.engine().runKernel(
      'Conv2DBackpropFilter',
      { x: tf.tensor4d(seeded(tf.util.sizeFromShape(xShape), 1), xShape), dy: tf.tensor4d(seeded(tf.util.sizeFromShape(dyShape), 2), dyShape) },
      { strides: 1, pad, dataFormat: 'NHWC', filterShape: filter } as never,
    ) as tf.Tensor,
  );
  const data = out.dataSync() as Float32Array;
  out.dispose();
  return { data, calls: patchCopy.calls - before };
}

describe('the filter gradient patch matrix copied by wasm', () => {
  it("gives the same gradient bits on this project's conv (100x28x28x1, 5x5x1x30, valid)", () => {
    const js = filterGradient([100, 28, 28, 1], [5, 5, 1, 30], 'valid', false);
    const wasm = filterGradient([100, 28, 28, 1], [5, 5, 1, 30], 'valid', true);
    expect(js.calls).toBe(0);
    expect(wasm.calls).toBe(25 * 100); // one call per tap and image
    expect(wasm.data.every((v, i) => Object.is(v, js.data[i]))).toBe(true);
  });

  it("and with 'same' padding, where edge taps keep the JavaScript zero fills", () => {
    const js = filterGradient([3, 9, 7, 1], [3, 3, 1, 4], 'same', false);
    const wasm = filterGradient([3, 9, 7, 1], [3, 3, 1, 4], 'same', true);
    // Only the centre tap reads whole rows inside the image for every output row.
    expect(wasm.calls).toBe(3);
    expect(wasm.data.every((v, i) => Object.is(v, js.data[i]))).toBe(true);
  });
});
