/*
 * Adam's elementwise update as a tiny WebAssembly SIMD function working directly on the
 * tfjs wasm backend's memory (imported, so no copies). Plain JavaScript needs ~25 ms for
 * the network's 2.16M parameters (three divisions and a square root per element); four
 * lanes at a time it is bounded by memory bandwidth instead.
 *
 * The module is written in WebAssembly text (adam-simd-wat.ts) and assembled with wabt.
 * f32x4 arithmetic is IEEE float32 with round-to-nearest in every lane, exactly like the
 * scalar float32 kernels tfjs runs op by op.
 */
import wabtModule from 'wabt';
import { ADAM_SIMD_WAT } from './adam-simd-wat.ts';

/**
 * out[i] = (m'[i] / c1) / (sqrt(v'[i] / c2) + eps) * nlr + w[i], with
 * m'[i] = m[i]*b1 + g'[i]*omb1 and v'[i] = v[i]*b2 + g'[i]*g'[i]*omb2 written back to m and v,
 * where g'[i] = g[i] + decay*w[i] (the gradient of decay/2 * Σw²), or g[i] when decay is 0.
 * Pointers are byte addresses in the imported memory; `bytes` is a multiple of 16.
 */
export type AdamSimd = (
  out: number,
  w: number,
  g: number,
  m: number,
  v: number,
  bytes: number,
  b1: number,
  omb1: number,
  b2: number,
  omb2: number,
  c1: number,
  c2: number,
  eps: number,
  nlr: number,
  decay: number,
) => void;

/** Σ x[i]² in double precision over `bytes` (a multiple of 16) from byte address `x`. */
export type SumSquaresSimd = (x: number, bytes: number) => number;

// wabt's assembler (a WebAssembly build of the reference toolkit), loaded once with this module.
const wabt = await wabtModule();

/** The module's binary, assembled from ADAM_SIMD_WAT with the SIMD feature on. */
function moduleBytes(): Uint8Array {
  const parsed = wabt.parseWat('adam-simd.wat', ADAM_SIMD_WAT, { simd: true });
  try {
    parsed.validate();
    return parsed.toBinary({}).buffer;
  } finally {
    parsed.destroy();
  }
}

/** Assembled once: the same bytes serve every memory adamSimd binds. */
let bytes: Uint8Array | undefined;

/** The parts of the WebAssembly JS API used here (this project's TypeScript libs omit it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: abstract new (...args: never[]) => object;
}

export const webAssembly = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

export interface AdamSimdKernels {
  adam: AdamSimd;
  sumSquares: SumSquaresSimd;
}

/** The SIMD functions bound to `memory` (a WebAssembly.Memory), or null where the runtime has no wasm SIMD. */
export function adamSimd(memory: object): AdamSimdKernels | null {
  try {
    bytes ??= moduleBytes();
    const module = new webAssembly.Module(bytes);
    const { exports } = new webAssembly.Instance(module, { env: { memory } });
    const plain = exports['adam'] as AdamSimd;
    const decayed = exports['adamDecay'] as AdamSimd;
    return {
      // Without decay, g stays g exactly (g + 0*w could flip a zero's sign or meet inf*0).
      adam: (...args) => (args[14] === 0 ? plain : decayed)(...args),
      sumSquares: exports['sumSquares'] as SumSquaresSimd,
    };
  } catch {
    return null;
  }
}
