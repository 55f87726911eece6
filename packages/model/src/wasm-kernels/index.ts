/**
 * Kernels the tfjs wasm backend lacks or runs slowly, registered by the project so the
 * network can train on wasm (DESIGN.md §5). Call after the wasm backend is set.
 * (Placeholder until the kernels land; idempotent.)
 */
export function registerWasmTrainingKernels(): void {}
