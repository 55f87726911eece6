import { MaxPoolGrad, backend_util } from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { GraftError } from '@graft/core';
import { WASM, heapF32, markAsGraftKernel } from './wasm-backend.ts';
import type { WasmKernelFunc } from './wasm-backend.ts';

/*
 * The stock wasm MaxPoolGrad walks every input pixel and, for each window covering it,
 * searches that window's maximum again: ~32 ms for this project's 100x24x24x30 pool,
 * a fifth of a training step. Here each window is searched once, all channels of a
 * pixel together (NHWC keeps them contiguous), and dy is added at the winner.
 * Ties go to the first maximum in row-major window order and NaNs never win, as in the
 * cpu backend's maxPoolPositions (and TensorFlow).
 */

function fail(message: string): never {
  throw new GraftError('WASM_MAX_POOL_GRAD', `MaxPoolGrad (wasm): ${message}`);
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
  const dx = heapF32(backend, out);
  const xs = heapF32(backend, x);
  const dys = heapF32(backend, dy);
  dx.fill(0);
  const best = new Float32Array(C);
  const at = new Int32Array(C);
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
        best.fill(-Infinity);
        at.fill(-1);
        for (let ih = ihLo; ih < ihHi; ih++) {
          for (let iw = iwLo; iw < iwHi; iw++) {
            const base = xBatch + (ih * W + iw) * C;
            for (let c = 0; c < C; c++) {
              const v = xs[base + c]!;
              if (v > best[c]!) {
                best[c] = v;
                at[c] = base + c;
              }
            }
          }
        }
        const dyBase = ((b * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) {
          const i = at[c]!;
          if (i >= 0) dx[i]! += dys[dyBase + c]!;
        }
      }
    }
  }
  return out;
};

export function maxPoolGradConfig(): KernelConfig {
  return { kernelName: MaxPoolGrad, backendName: WASM, kernelFunc: markAsGraftKernel(maxPoolGrad) };
}
