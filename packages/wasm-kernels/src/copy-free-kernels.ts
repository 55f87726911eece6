import { Cast, Identity, Sum, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { WASM, heapF32, markAsGraftKernel, stockKernel } from './wasm-backend.ts';
import type { WasmKernelFunc } from './wasm-backend.ts';
import { SUM_ROWS_WAT } from './sum-rows-wat.ts';
import { simdModule } from './simd-module.ts';

type SumRowsSimd = (x: number, rows: number, cols: number, acc: number, out: number) => void;

/** sumRows in wasm SIMD (sum-rows-wat.ts): the same additions, two columns per f64x2. */
const simdFor = simdModule('sum-rows', SUM_ROWS_WAT, (exports) => exports['sumRows'] as SumRowsSimd);

/** Switches the SIMD column sums off (tests compare them with sumRows) and counts their calls. */
export const sumRowsSimd = { enabled: true, calls: 0 };

/*
 * Small per-step costs of the stock kernels, removed.
 *
 * Identity and a Cast to the same dtype copy the whole buffer on wasm, and the engine
 * runs Identity on every tensor it saves for backprop (a 4320x500 kernel several times
 * a step). Tensors are immutable, so sharing the buffer with a reference count is what
 * Reshape already does here and what the cpu backend does for Identity.
 *
 * Sum over leading axes (the bias gradient of conv and dense layers: [B,H,W,C] -> [C])
 * makes the stock kernel transpose the whole input first; accumulating rows needs no copy.
 * The row sums run in wasm SIMD where available (sum-rows-wat.ts), the same additions as
 * the JavaScript sumRows below.
 */

function shareBuffer(backend: Parameters<WasmKernelFunc>[0]['backend'], x: TensorInfo): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function identityConfig(): KernelConfig {
  const stock = stockKernel(Identity);
  const stockFunc = stock.kernelFunc as unknown as WasmKernelFunc;
  const kernelFunc: WasmKernelFunc = (args) => {
    const x = args.inputs['x']!;
    return x.dtype === 'string' ? stockFunc(args) : shareBuffer(args.backend, x);
  };
  return { ...stock, kernelName: Identity, backendName: WASM, kernelFunc: markAsGraftKernel(kernelFunc) };
}

export function castConfig(): KernelConfig {
  const stock = stockKernel(Cast);
  const stockFunc = stock.kernelFunc as unknown as WasmKernelFunc;
  const kernelFunc: WasmKernelFunc = (args) => {
    const x = args.inputs['x']!;
    const same = x.dtype === args.attrs?.['dtype'] && x.dtype !== 'string' && x.dtype !== 'complex64';
    return same ? shareBuffer(args.backend, x) : stockFunc(args);
  };
  return { ...stock, kernelName: Cast, backendName: WASM, kernelFunc: markAsGraftKernel(kernelFunc) };
}

/**
 * Column sums of a [rows, cols] matrix, in doubles as the cpu backend does. Eight rows per
 * pass: one accumulator update per eight loads runs twice as fast as one per load.
 */
export function sumRows(xs: Float32Array, rows: number, cols: number): Float64Array {
  const acc = new Float64Array(cols);
  const c2 = 2 * cols, c3 = 3 * cols, c4 = 4 * cols, c5 = 5 * cols, c6 = 6 * cols, c7 = 7 * cols;
  let r = 0;
  for (; r + 8 <= rows; r += 8) {
    const row = r * cols;
    for (let c = 0; c < cols; c++) {
      const i = row + c;
      acc[c]! +=
        xs[i]! + xs[i + cols]! + (xs[i + c2]! + xs[i + c3]!) + (xs[i + c4]! + xs[i + c5]! + (xs[i + c6]! + xs[i + c7]!));
    }
  }
  for (; r < rows; r++) {
    for (let c = 0, i = r * cols; c < cols; c++, i++) acc[c]! += xs[i]!;
  }
  return acc;
}

export function sumConfig(): KernelConfig {
  const stock = stockKernel(Sum);
  const stockFunc = stock.kernelFunc as unknown as WasmKernelFunc;
  const kernelFunc: WasmKernelFunc = (args) => {
    const { backend } = args;
    const x = args.inputs['x']!;
    const rank = x.shape.length;
    const axes = util.parseAxisParam(args.attrs?.['axis'] as number | number[], x.shape);
    const lead = new Set(axes).size;
    // Only float32 sums over the first `lead` axes, leaving the innermost one.
    if (x.dtype !== 'float32' || lead === 0 || lead >= rank || !axes.every((a) => a < lead)) return stockFunc(args);
    const rows = util.sizeFromShape(x.shape.slice(0, lead));
    const cols = util.sizeFromShape(x.shape.slice(lead));
    const shape = args.attrs?.['keepDims'] === true ? [...new Array<number>(lead).fill(1), ...x.shape.slice(lead)] : x.shape.slice(lead);
    const out = backend.makeOutput(shape, 'float32');
    const simd = sumRowsSimd.enabled ? simdFor(backend) : null;
    if (simd) {
      const acc = backend.makeOutput([2 * Math.max(1, cols)], 'float32'); // cols doubles
      try {
        simd(heapF32(backend, x).byteOffset, rows, cols, heapF32(backend, acc).byteOffset, heapF32(backend, out).byteOffset);
      } finally {
        backend.disposeData(acc.dataId);
      }
      sumRowsSimd.calls++;
      return out;
    }
    const xs = heapF32(backend, x);
    heapF32(backend, out).set(sumRows(xs, rows, cols));
    return out;
  };
  return { ...stock, kernelName: Sum, backendName: WASM, kernelFunc: markAsGraftKernel(kernelFunc) };
}
