// Kernels and an optimizer for the tfjs wasm backend. Nothing here knows about graft's
// network or pipeline; the package reads tfjs internals (kernel registry, wasm heap), so
// it pins tfjs exactly and refuses to register on another version (TFJS_VERSION).
export { TFJS_VERSION, assertTfjsVersion, registerWasmTrainingKernels, wasmTrainingKernelsRegistered } from './register.ts';
export { WasmKernelError } from './wasm-backend.ts';
export { FusedAdam, checkState, sumOfSquaresWasm } from './fused-adam.ts';
export type { AdamConfig, AdamState, TrainingOptimizer } from './fused-adam.ts';
export { setGemmKernels } from './batch-mat-mul.ts';
export { gemmStats } from './gemm.ts';
export { setMaxPoolGradSimd } from './max-pool-grad.ts';
export { setSpeedKernels } from './speed-kernels.ts';
