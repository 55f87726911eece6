import { MaxPoolGrad, backend_util } from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { WASM, WasmKernelError, heapF32, markAsGraftKernel } from './wasm-backend.ts';
import type { WasmKernelFunc } from './wasm-backend.ts';
import { MAX_POOL_GRAD_WAT } from './max-pool-grad-wat.ts';
import { simdModule } from './simd-module.ts';

type MaxPoolGrad2x2 = (x: number, dy: number, dx: number, windowRows: number, ow: number, c: number) => void;

/** The SIMD kernel for 2×2 stride-2 windows tiling the input (max-pool-grad-wat.ts). */
const simdFor = simdModule('max-pool-grad', MAX_POOL_GRAD_WAT, (exports) => exports['maxPoolGrad2x2'] as MaxPoolGrad2x2);

/** Switches the SIMD path off (tests compare it with the JavaScript loop below) and counts its calls. */
export const maxPoolGradSimd = { enabled: true, calls: 0 };

/** Switches the SIMD MaxPoolGrad on or off (benchmarks compare it with the JavaScript loop). */
export function setMaxPoolGradSimd(on: boolean): void {
  maxPoolGradSimd.enabled = on;
}

/*
 * The stock wasm MaxPoolGrad walks every input pixel and, for each window covering it,
 * searches that window's maximum again: ~32 ms for this project's 100x24x24x30 pool,
 * a fifth of a training step. Here each window is searched once, all channels of a
 * pixel's channels in turn (NHWC keeps them contiguous), and dy is added at the winner.
 * Ties go to the first maximum in row-major window order and NaNs never win, as in the
 * cpu backend's maxPoolPositions (and TensorFlow).
 */

function fail(message: string): never {
  throw new WasmKernelError('WASM_MAX_POOL_GRAD', `MaxPoolGrad (wasm): ${message}`);
}

/** The first non-NaN pixel of a window for channel c, or -1 (NaN never wins, as in the cpu backend). */
function firstNumber(xs: Float32Array, pixels: Int32Array, np: number, c: number): number {
  for (let j = 0; j < np; j++) {
    const i = pixels[j]! + c;
    if (xs[i] === xs[i]) return i;
  }
  return -1;
}

const maxPoolGrad: WasmKernelFunc = ({ inputs, backend, attrs }) => {
  const dy = inputs['dy']!;
  const x = inputs['input']!;
  const a = attrs ?? {};
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') fail(`expects float32 tensors, got input ${x.dtype} and dy ${dy.dtype}`);
  const info = backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    a['filterSize'] as number | [number, number],
    a['strides'] as number | [number, number],
    1,
    a['pad'] as 'valid' | 'same' | number | backend_util.ExplicitPadding,
    a['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
  );
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  if (dy.shape.join() !== [B, OH, OW, C].join()) fail(`dy has shape [${dy.shape}], expected [${[B, OH, OW, C]}]`);

  const out = backend.makeOutput(x.shape, 'float32');
  // This project's pool (2×2, stride 2, windows tiling the input without padding): four
  // channels at a time in wasm SIMD, ~5x the JavaScript loop below, same values.
  const simd = maxPoolGradSimd.enabled && KH === 2 && KW === 2 && sh === 2 && sw === 2 && padTop === 0 && padLeft === 0 &&
    H === 2 * OH && W === 2 * OW && C >= 4 ? simdFor(backend) : null;
  if (simd) {
    simd(heapF32(backend, x).byteOffset, heapF32(backend, dy).byteOffset, heapF32(backend, out).byteOffset, B * OH, OW, C);
    maxPoolGradSimd.calls++;
    return out;
  }
  const dx = heapF32(backend, out);
  const xs = heapF32(backend, x);
  const dys = heapF32(backend, dy);
  dx.fill(0);
  const pixels = new Int32Array(KH * KW); // flat offsets of the current window's pixels (channel 0)
  for (let b = 0; b < B; b++) {
    const xBatch = b * H * W * C;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = oh * sh - padTop;
      const ihLo = Math.max(0, ih0);
      const ihHi = Math.min(H, ih0 + KH);
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = ow * sw - padLeft;
        const iwLo = Math.max(0, iw0);
        const iwHi = Math.min(W, iw0 + KW);
        let np = 0;
        for (let ih = ihLo; ih < ihHi; ih++) {
          for (let iw = iwLo; iw < iwHi; iw++) pixels[np++] = xBatch + (ih * W + iw) * C;
        }
        if (np === 0) continue;
        const dyBase = ((b * OH + oh) * OW + ow) * C;
        if (np === 4) {
          // 2x2 windows (the usual pool) unrolled: a third faster than the general loop.
          const p0 = pixels[0]!;
          const p1 = pixels[1]!;
          const p2 = pixels[2]!;
          const p3 = pixels[3]!;
          for (let c = 0; c < C; c++) {
            let at = p0 + c;
            if (xs[at] !== xs[at]) {
              at = firstNumber(xs, pixels, np, c);
              if (at < 0) continue;
            }
            at += +(xs[p1 + c]! > xs[at]!) * (p1 + c - at);
            at += +(xs[p2 + c]! > xs[at]!) * (p2 + c - at);
            at += +(xs[p3 + c]! > xs[at]!) * (p3 + c - at);
            dx[at]! += dys[dyBase + c]!;
          }
          continue;
        }
        for (let c = 0; c < C; c++) {
          let at = pixels[0]! + c;
          if (xs[at] !== xs[at]) {
            at = firstNumber(xs, pixels, np, c);
            if (at < 0) continue;
          }
          // Branch-free argmax: with random data a compare-and-branch mispredicts so
          // often that it costs 3x the whole loop. `+(a > b)` compiles to a flag move.
          for (let j = 1; j < np; j++) {
            const i = pixels[j]! + c;
            at += +(xs[i]! > xs[at]!) * (i - at);
          }
          dx[at]! += dys[dyBase + c]!;
        }
      }
    }
  }
  return out;
};

export function maxPoolGradConfig(): KernelConfig {
  return { kernelName: MaxPoolGrad, backendName: WASM, kernelFunc: markAsGraftKernel(maxPoolGrad) };
}
