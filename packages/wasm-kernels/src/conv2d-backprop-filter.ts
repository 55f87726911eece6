import { BatchMatMul, Conv2DBackpropFilter, backend_util } from '@tensorflow/tfjs-core';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { WASM, WasmKernelError, copyRows, heapF32, heapOffsetF32, markAsGraftKernel, stockKernel, view, wholeHeapF32 } from './wasm-backend.ts';
import type { WasmKernelFunc } from './wasm-backend.ts';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { COPY_RUNS_WAT } from './copy-runs-wat.ts';
import { simdModule } from './simd-module.ts';

type CopyRuns = (dst: number, src: number, count: number, run: number, dstStride: number, srcStride: number) => void;

/** copyRuns in wasm (copy-runs-wat.ts), null without wasm SIMD. */
const copyRunsFor = simdModule('copy-runs', COPY_RUNS_WAT, (exports) => exports['copyRuns'] as CopyRuns);

/** Switches the wasm run copies off (tests compare them with the JavaScript copies) and counts their calls. */
export const patchCopy = { wasm: true, calls: 0 };

/*
 * dW[kh,kw,ci,co] = Σ_{b,oh,ow} x[b, oh·sh + kh − padTop, ow·sw + kw − padLeft, ci] · dy[b,oh,ow,co]
 *
 * As one matrix product: dW [KH·KW·Ci, Co] = Pᵀ [KH·KW·Ci, B·OH·OW] @ dy [B·OH·OW, Co], where
 * P is the im2col patch matrix. Pᵀ is written directly (row = filter tap, column = output
 * position) so both operands are untransposed and the stock kernel takes XNNPACK's fast
 * path; dy is used in place. For this project's conv (5x5x1x30, batch 100) that is
 * 86 MFLOP in ~4 ms, where a JavaScript loop needs tens of ms.
 */

/** Largest patch matrix built at once (floats); bigger inputs are processed in batch chunks. Tests lower it. */
export const patchLimit = { floats: 1 << 24 };

function fail(message: string): never {
  throw new WasmKernelError('WASM_CONV2D_BACKPROP_FILTER', `Conv2DBackpropFilter (wasm): ${message}`);
}

/**
 * Writes Pᵀ for batch entries [b0, b0 + nb) at float offset `pt` of `heap` ([KH·KW·Ci, nb·OH·OW],
 * row-major), reading x at float offset `x`. Both live in the wasm heap, so a contiguous run
 * (stride 1, one channel: the usual first conv layer) is a copyWithin, a memmove.
 */
function fillPatchesT(
  heap: Float32Array,
  pt: number,
  x: number,
  info: backend_util.Conv2DInfo,
  b0: number,
  nb: number,
  copyRuns: CopyRuns | null,
): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const cols = nb * OH * OW;
  const xRow = W * C;
  const xStep = sw * C;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      // Output columns whose input column is inside the image, for this tap.
      const iw0 = kw - padLeft;
      const owLo = Math.max(0, Math.ceil(-iw0 / sw));
      const owHi = Math.min(OW, Math.floor((W - 1 - iw0) / sw) + 1);
      const run = owHi - owLo;
      for (let ci = 0; ci < C; ci++) {
        const rowBase = pt + ((kh * KW + kw) * C + ci) * cols;
        // Every output row of this tap reads a whole run inside the image: one wasm call
        // per image copies its OH runs (byte addresses; heap offsets are in floats).
        const whole = copyRuns !== null && xStep === 1 && owLo === 0 && owHi === OW && kh - padTop >= 0 && (OH - 1) * sh + kh - padTop < H;
        for (let b = 0; b < nb; b++) {
          const xBatch = x + (b0 + b) * H * xRow;
          if (whole) {
            const src = xBatch + (kh - padTop) * xRow + iw0 * C + ci;
            copyRuns(4 * (rowBase + b * OH * OW), 4 * src, OH, OW, 4 * OW, 4 * sh * xRow);
            patchCopy.calls++;
            continue;
          }
          for (let oh = 0; oh < OH; oh++) {
            const dst = rowBase + (b * OH + oh) * OW;
            const ih = oh * sh + kh - padTop;
            if (ih < 0 || ih >= H || run <= 0) {
              heap.fill(0, dst, dst + OW);
              continue;
            }
            if (owLo > 0) heap.fill(0, dst, dst + owLo);
            const src = xBatch + ih * xRow + (owLo * sw + iw0) * C + ci;
            if (xStep === 1) {
              heap.copyWithin(dst + owLo, src, src + run);
            } else {
              for (let j = 0, s = src; j < run; j++, s += xStep) heap[dst + owLo + j] = heap[s]!;
            }
            if (owHi < OW) heap.fill(0, dst + owHi, dst + OW);
          }
        }
      }
    }
  }
}

const conv2DBackpropFilter: WasmKernelFunc = ({ inputs, backend, attrs }) => {
  const x = inputs['x']!;
  const dy = inputs['dy']!;
  const a = attrs ?? {};
  const filterShape = a['filterShape'] as [number, number, number, number];
  const dataFormat = (a['dataFormat'] as string | undefined) ?? 'NHWC';
  const dilations = (a['dilations'] as number | [number, number] | undefined) ?? 1;
  if (dataFormat !== 'NHWC') fail(`only NHWC data is supported, got dataFormat '${dataFormat}'; transpose to NHWC first`);
  if (!(Array.isArray(dilations) ? dilations.every((v) => v === 1) : dilations === 1)) {
    fail(`only dilation 1 is supported, got dilations ${JSON.stringify(dilations)}`);
  }
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') fail(`expects float32 tensors, got x ${x.dtype} and dy ${dy.dtype}`);
  if (x.shape.length !== 4 || dy.shape.length !== 4) fail(`expects rank-4 x and dy, got shapes [${x.shape}] and [${dy.shape}]`);

  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    a['strides'] as number | [number, number],
    1,
    a['pad'] as 'valid' | 'same' | number | backend_util.ExplicitPadding,
    a['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
    false,
    'channelsLast',
  );
  const { batchSize: B, outHeight: OH, outWidth: OW, outChannels: Co } = info;
  if (dy.shape[0] !== B || dy.shape[1] !== OH || dy.shape[2] !== OW || dy.shape[3] !== Co) {
    fail(`dy has shape [${dy.shape}] but x [${x.shape}] and filter [${filterShape}] give [${[B, OH, OW, Co]}]`);
  }
  const taps = info.filterHeight * info.filterWidth * info.inChannels;
  const positions = OH * OW;
  const out = backend.makeOutput(filterShape, 'float32');
  if (B * positions === 0) {
    heapF32(backend, out).fill(0);
    return out;
  }

  // The registered BatchMatMul (graft's once registered): for this untransposed 2-D
  // product both it and the stock kernel go straight to XNNPACK.
  const matMul = stockKernel(BatchMatMul).kernelFunc as unknown as WasmKernelFunc;
  const chunk = Math.max(1, Math.min(B, Math.floor(patchLimit.floats / (taps * positions))));
  for (let b0 = 0; b0 < B; b0 += chunk) {
    const nb = Math.min(chunk, B - b0);
    const cols = nb * positions;
    const pt = backend.makeOutput([taps, cols], 'float32');
    // dy's rows for these batch entries; the whole of dy when it fits in one chunk.
    const dyPart: TensorInfo =
      nb === B ? view(dy, [cols, Co]) : copyRows(backend, dy, positions * Co, b0, nb, [cols, Co]);
    let part: TensorInfo;
    try {
      fillPatchesT(wholeHeapF32(backend, pt), heapOffsetF32(backend, pt), heapOffsetF32(backend, x), info, b0, nb, patchCopy.wasm ? copyRunsFor(backend as BackendWasm) : null);
      part = matMul({ inputs: { a: pt, b: dyPart }, backend, attrs: { transposeA: false, transposeB: false } });
    } finally {
      backend.disposeData(pt.dataId);
      if (dyPart.dataId !== dy.dataId) backend.disposeData(dyPart.dataId);
    }
    const dst = heapF32(backend, out);
    const src = heapF32(backend, part);
    if (b0 === 0) dst.set(src);
    else for (let i = 0; i < src.length; i++) dst[i]! += src[i]!;
    backend.disposeData(part.dataId);
  }
  return out;
};

export function conv2DBackpropFilterConfig(): KernelConfig {
  return {
    kernelName: Conv2DBackpropFilter,
    backendName: WASM,
    kernelFunc: markAsGraftKernel(conv2DBackpropFilter),
  };
}
