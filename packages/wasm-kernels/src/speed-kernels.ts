import { setGemmKernels } from './batch-mat-mul.ts';
import { patchCopy } from './conv2d-backprop-filter.ts';
import { sumRowsSimd } from './copy-free-kernels.ts';
import { setMaxPoolGradSimd } from './max-pool-grad.ts';

/**
 * Switches every wasm speed-up that replaced an earlier path with the same bits on or off
 * together: graft's GEMM (vs XNNPACK), the SIMD MaxPoolGrad and column sums (vs their
 * JavaScript loops) and the wasm patch copies of the filter gradient. Benchmarks compare the
 * two states; training never needs to (the results are identical).
 */
export function setSpeedKernels(on: boolean): void {
  setGemmKernels(on);
  setMaxPoolGradSimd(on);
  sumRowsSimd.enabled = on;
  patchCopy.wasm = on;
}
