import '@tensorflow/tfjs-backend-wasm';
import { version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { getKernel, registerKernel, unregisterKernel, version_core } from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { batchMatMulConfig, fusedMatMulConfig } from './batch-mat-mul.ts';
import { conv2DBackpropFilterConfig } from './conv2d-backprop-filter.ts';
import { castConfig, identityConfig, sumConfig } from './copy-free-kernels.ts';
import { maxPoolGradConfig } from './max-pool-grad.ts';
import { WASM, WasmKernelError, isGraftKernel } from './wasm-backend.ts';

/**
 * The one tfjs version these kernels were written and tested against. They read tfjs
 * internals (the wasm heap layout, the stock kernels they wrap, BackendWasm methods), which
 * change without notice between releases, so package.json pins exactly this version and
 * registration refuses any other rather than compute wrong gradients quietly.
 */
export const TFJS_VERSION = '4.22.0';

/** Throws WASM_TFJS_VERSION unless every version in `found` (default: the loaded tfjs) is TFJS_VERSION. */
export function assertTfjsVersion(
  found: Readonly<Record<string, string>> = { '@tensorflow/tfjs-core': version_core, '@tensorflow/tfjs-backend-wasm': version_wasm },
): void {
  const wrong = Object.entries(found).filter(([, version]) => version !== TFJS_VERSION);
  if (wrong.length > 0) {
    throw new WasmKernelError(
      'WASM_TFJS_VERSION',
      `graft's wasm kernels need tfjs ${TFJS_VERSION} exactly (they use its internals) but found ` +
        `${wrong.map(([name, version]) => `${name} ${version}`).join(', ')}; install ${TFJS_VERSION} ` +
        '(npm ci restores the pinned versions) or choose another backend with --backend cpu',
    );
  }
}

/** Each kernel graft registers on wasm, built lazily: wrappers capture the stock kernel. */
const KERNELS: Record<string, () => KernelConfig> = {
  BatchMatMul: batchMatMulConfig,
  _FusedMatMul: fusedMatMulConfig,
  Conv2DBackpropFilter: conv2DBackpropFilterConfig,
  MaxPoolGrad: maxPoolGradConfig,
  Identity: identityConfig,
  Cast: castConfig,
  Sum: sumConfig,
};

/**
 * Kernels the tfjs wasm backend (TFJS_VERSION) lacks or runs slowly, registered so the network can
 * train on wasm (DESIGN.md §5):
 * - Conv2DBackpropFilter, missing from the backend (conv layers could not train);
 * - BatchMatMul and _FusedMatMul, whose transposed and batched cases otherwise take a
 *   scalar loop ~15x slower than the XNNPACK path (every dense backward pass), and whose
 *   large products skip the left operand's zeros (gemm.ts), bit for bit XNNPACK's result;
 * - MaxPoolGrad, whose stock version re-searches every window once per input pixel;
 * - Identity, same-dtype Cast and leading-axes Sum, which copy or transpose whole
 *   buffers where sharing or a row sum will do.
 *
 * Safe to call any number of times, before or after `tf.setBackend('wasm')`; kernels are
 * global to the tfjs engine, so this affects every wasm computation in the process.
 */
export function registerWasmTrainingKernels(): void {
  assertTfjsVersion();
  for (const [name, build] of Object.entries(KERNELS)) {
    const current = getKernel(name, WASM);
    if (isGraftKernel(current)) continue; // already ours: wrapping it again would wrap a wrapper
    const config = build();
    if (current !== undefined) unregisterKernel(name, WASM);
    registerKernel(config);
  }
}

/** True when registerWasmTrainingKernels() has run in this process. */
export function wasmTrainingKernelsRegistered(): boolean {
  return Object.keys(KERNELS).every((name) => isGraftKernel(getKernel(name, WASM)));
}
