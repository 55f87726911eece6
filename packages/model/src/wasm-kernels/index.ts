import '@tensorflow/tfjs-backend-wasm';
import { getKernel, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { matMulKernelConfigs } from './batch-mat-mul.ts';
import { conv2DBackpropFilterConfig } from './conv2d-backprop-filter.ts';
import { WASM, isGraftKernel } from './wasm-backend.ts';

/**
 * Kernels the tfjs 4.22 wasm backend lacks or runs slowly, registered so the network can
 * train on wasm (DESIGN.md §5):
 * - Conv2DBackpropFilter, missing from the backend (conv layers could not train);
 * - BatchMatMul and _FusedMatMul, whose transposed and batched cases otherwise take a
 *   scalar loop ~15x slower than the XNNPACK path (every dense backward pass).
 *
 * Safe to call any number of times, before or after `tf.setBackend('wasm')`; kernels are
 * global to the tfjs engine, so this affects every wasm computation in the process.
 */
export function registerWasmTrainingKernels(): void {
  const configs: KernelConfig[] = [];
  // Wrappers must be built from the stock kernels, so only when ours are not in place yet.
  if (!isGraftKernel(getKernel('BatchMatMul', WASM))) configs.push(...matMulKernelConfigs());
  if (!isGraftKernel(getKernel('Conv2DBackpropFilter', WASM))) configs.push(conv2DBackpropFilterConfig());
  for (const config of configs) {
    if (getKernel(config.kernelName, WASM) !== undefined) unregisterKernel(config.kernelName, WASM);
    registerKernel(config);
  }
}

/** True when registerWasmTrainingKernels() has run in this process. */
export function wasmTrainingKernelsRegistered(): boolean {
  return isGraftKernel(getKernel('BatchMatMul', WASM)) && isGraftKernel(getKernel('Conv2DBackpropFilter', WASM));
}
