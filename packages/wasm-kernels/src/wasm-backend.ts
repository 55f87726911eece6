import { getKernel, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Helpers shared by the wasm kernels. Everything here works on TensorInfo (the
 * backend's view of a tensor) rather than Tensor: kernels run inside the engine, where
 * intermediates are not tracked, so each one created here must be freed with
 * `backend.disposeData` before the kernel returns.
 */

export const WASM = 'wasm';

/**
 * A failure inside graft's wasm kernels. This package depends on tfjs alone, so it does
 * not use @graft/core's GraftError; the `code` is the same kind of stable string.
 */
export class WasmKernelError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'WasmKernelError';
  }
}

/** Marks a kernel function as ours so registration can tell whether it already happened. */
export const GRAFT_KERNEL = Symbol.for('graft.wasm-kernel');

export type WasmKernelFunc = (args: {
  inputs: Record<string, TensorInfo | undefined>;
  backend: BackendWasm;
  attrs?: NamedAttrMap;
}) => TensorInfo;

export function isGraftKernel(config: KernelConfig | undefined): boolean {
  return config !== undefined && (config.kernelFunc as { [GRAFT_KERNEL]?: boolean })[GRAFT_KERNEL] === true;
}

export function markAsGraftKernel(kernelFunc: WasmKernelFunc): KernelFunc {
  Object.defineProperty(kernelFunc, GRAFT_KERNEL, { value: true });
  return kernelFunc as unknown as KernelFunc;
}

/** The stock wasm kernel, whose kernelFunc we wrap or call; it must be registered already. */
export function stockKernel(kernelName: string): KernelConfig {
  const config = getKernel(kernelName, WASM);
  if (config === undefined) {
    throw new WasmKernelError(
      'WASM_KERNEL_MISSING',
      `the tfjs wasm backend has no '${kernelName}' kernel registered; ` +
        `import '@tensorflow/tfjs-backend-wasm' (4.22) before registering graft's wasm kernels`,
    );
  }
  return config;
}

/** The same data under another shape, without a copy (the caller must not dispose it). */
export function view(info: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

/**
 * A float32 view of a tensor's heap memory. Take it only after the last allocation that
 * precedes its use: a malloc can grow the wasm memory, which detaches earlier views.
 */
export function heapF32(backend: BackendWasm, info: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** The whole wasm heap as floats, found through any tensor (same caveat as heapF32). */
export function wholeHeapF32(backend: BackendWasm, anyTensor: TensorInfo): Float32Array {
  return new Float32Array(heapF32(backend, anyTensor).buffer);
}

/** Where a float32 tensor starts in wholeHeapF32 (malloc aligns to 8 bytes, so this is whole). */
export function heapOffsetF32(backend: BackendWasm, info: TensorInfo): number {
  return heapF32(backend, info).byteOffset / 4;
}

/** Copies rows [from, from + count) of a tensor seen as [rows, rowSize] into a new tensor. */
export function copyRows(
  backend: BackendWasm,
  info: TensorInfo,
  rowSize: number,
  from: number,
  count: number,
  shape: number[],
): TensorInfo {
  util.assert(util.sizeFromShape(shape) === rowSize * count, () => 'copyRows: shape does not match the row count');
  const out = backend.makeOutput(shape, 'float32');
  const src = heapF32(backend, info);
  heapF32(backend, out).set(src.subarray(from * rowSize, (from + count) * rowSize));
  return out;
}
