/*
 * WebAssembly text modules that work directly on the tfjs wasm backend's memory (imported,
 * so no copies), assembled with wabt when first used and instantiated once per memory.
 */
import wabtModule from 'wabt';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { webAssembly } from './adam-simd.ts';

const wabt = await wabtModule();

/**
 * Assembles `wat` (SIMD on, plus `features`) once and binds it to each backend memory once;
 * null where the runtime rejects the module (no wasm SIMD, or relaxed SIMD not enabled).
 */
export function simdModule<T>(
  name: string,
  wat: string | (() => string),
  bind: (exports: Record<string, unknown>) => T,
  features: Record<string, boolean> = {},
): (backend: BackendWasm) => T | null {
  let bytes: Uint8Array | undefined;
  const byMemory = new WeakMap<object, T | null>();
  const assemble = (): Uint8Array => {
    const parsed = wabt.parseWat(`${name}.wat`, typeof wat === 'string' ? wat : wat(), { simd: true, ...features });
    try {
      parsed.validate();
      return parsed.toBinary({}).buffer;
    } finally {
      parsed.destroy();
    }
  };
  return (backend) => {
    const memory = (backend as unknown as { wasm?: { asm?: { memory?: unknown } } }).wasm?.asm?.memory;
    if (!(memory instanceof webAssembly.Memory)) return null;
    if (!byMemory.has(memory)) {
      let bound: T | null = null;
      try {
        bytes ??= assemble();
        const { exports } = new webAssembly.Instance(new webAssembly.Module(bytes), { env: { memory } });
        bound = bind(exports);
      } catch {
        // A runtime without wasm SIMD rejects the module: the caller falls back.
        bound = null;
      }
      byMemory.set(memory, bound);
    }
    return byMemory.get(memory)!;
  };
}
