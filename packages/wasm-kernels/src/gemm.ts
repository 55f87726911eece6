/*
 * C = op(A)·op(B) on the tfjs wasm backend's heap, skipping A's exact zeros (gemm-simd-wat.ts).
 *
 * Why: a training step's fc1 products (~432 MFLOP each) take most of its time, and their
 * left operand is mostly zeros — the pool output after ReLU and dropout (forward, and the
 * filter gradient Xᵀ·dY read column by column), the fc1 gradient after ReLU and dropout
 * (dY·Wᵀ). A dense GEMM multiplies every one of them.
 *
 * Same bits as XNNPACK's wasm GEMM (the stock fast path): each output is
 * init + a₀b₀ + a₁b₁ + … in increasing k with separate multiply and add, init 0 or the
 * bias. Dropping a term whose a is ±0 leaves that sum unchanged as long as it is not -0 and
 * b is finite: it never is -0 when it starts from +0 (an IEEE sum is -0 only when both
 * terms are), so a bias containing -0 is left to the stock kernel; a non-finite B (a
 * diverged weight) would give NaN there and a number here, but training stops at a
 * non-finite loss before that matters.
 */
import wabtModule from 'wabt';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { webAssembly } from './adam-simd.ts';
import { GEMM_SIMD_WAT } from './gemm-simd-wat.ts';
import { heapF32 } from './wasm-backend.ts';

type Compress = (a: number, rows: number, cols: number, rowStep: number, colStep: number, bStride: number, nz: number, starts: number) => number;
type Pack = (b: number, k: number, n: number, rowStep: number, colStep: number, dst: number) => void;
type Product = (rows: number, starts: number, nz: number, panels: number, k: number, n: number, c: number, cStride: number, bias: number, flags: number) => void;

interface GemmModule {
  compress: Compress;
  pack: Pack;
  product: Product;
}

/** A packed panel row: 32 floats. */
const PANEL_ROW_BYTES = 128;

export const GEMM_FLAGS = { biasFirst: 1, relu: 2 } as const;

const wabt = await wabtModule();
let bytes: Uint8Array | undefined;

function moduleBytes(): Uint8Array {
  const parsed = wabt.parseWat('gemm-simd.wat', GEMM_SIMD_WAT, { simd: true });
  try {
    parsed.validate();
    return parsed.toBinary({}).buffer;
  } finally {
    parsed.destroy();
  }
}

const byMemory = new WeakMap<object, GemmModule | null>();

/** The kernels bound to the backend's memory, or null where the runtime has no wasm SIMD. */
export function gemmFor(backend: BackendWasm): GemmModule | null {
  const memory = (backend as unknown as { wasm?: { asm?: { memory?: unknown } } }).wasm?.asm?.memory;
  if (!(memory instanceof webAssembly.Memory)) return null;
  if (!byMemory.has(memory)) {
    let kernels: GemmModule | null = null;
    try {
      bytes ??= moduleBytes();
      const { exports } = new webAssembly.Instance(new webAssembly.Module(bytes), { env: { memory } });
      kernels = { compress: exports['compress'] as Compress, pack: exports['pack'] as Pack, product: exports['product'] as Product };
    } catch {
      kernels = null;
    }
    byMemory.set(memory, kernels);
  }
  return byMemory.get(memory)!;
}

function address(backend: BackendWasm, info: TensorInfo): number {
  return heapF32(backend, info).byteOffset;
}

/**
 * Tunables, exported for tests and benchmarks. Above `maxDensity` (nonzeros of A over m·k)
 * skipping saves too little for the 1-row kernel to beat XNNPACK's register-blocked one,
 * which also keeps a weight's packing across calls (evaluation reuses it batch after batch).
 */
export const gemmLimits = { maxDensity: 0.8 };

/**
 * How often the kernel ran, how often it handed a too-dense product back (tests check it
 * was used), and the nonzeros of A over its entries summed over the products it ran.
 */
export const gemmStats = { products: 0, tooDense: 0, nonzeros: 0, entries: 0 };

/**
 * How op(A) [m×k] and op(B) [k×n] are stored: untransposed (row-major [m×k], [k×n]) or
 * transposed (row-major [k×m], [n×k]).
 */
export interface SparseProductArgs {
  a: TensorInfo;
  transposeA: boolean;
  b: TensorInfo;
  transposeB: boolean;
  m: number;
  k: number;
  n: number;
  /** One value per output column, starting every sum (as the stock fused kernel adds it). */
  bias?: TensorInfo;
  relu?: boolean;
}

/**
 * A new [m, n] tensor (the caller owns it) with op(A)·op(B), or null when A has too few
 * zeros to be worth it (gemmLimits.maxDensity).
 */
export function sparseProduct(backend: BackendWasm, gemm: GemmModule, args: SparseProductArgs): TensorInfo | null {
  const { a, transposeA, b, transposeB, m, k, n, bias, relu } = args;
  // Scratch, freed before returning: up to m·k (offset, value) pairs and m+1 row starts.
  const nz = backend.makeOutput([Math.max(1, 2 * m * k)], 'float32');
  const starts = backend.makeOutput([m + 1], 'int32');
  let panels: TensorInfo | undefined;
  try {
    const count = gemm.compress(address(backend, a), m, k, transposeA ? 4 : 4 * k, transposeA ? 4 * m : 4, PANEL_ROW_BYTES, address(backend, nz), address(backend, starts));
    if (count > gemmLimits.maxDensity * m * k) {
      gemmStats.tooDense++;
      return null;
    }
    // B in panels of 32 columns (gemm-simd-wat.ts $pack).
    panels = backend.makeOutput([Math.max(1, Math.ceil(n / 32) * 32 * k)], 'float32');
    const out = backend.makeOutput([m, n], 'float32');
    // Addresses after the last allocation: a view taken earlier is detached if the heap grew.
    const ppanels = address(backend, panels);
    gemm.pack(address(backend, b), k, n, transposeB ? 4 : 4 * n, transposeB ? 4 * k : 4, ppanels);
    const flags = (bias ? GEMM_FLAGS.biasFirst : 0) | (relu ? GEMM_FLAGS.relu : 0);
    if (m > 0) gemm.product(m, address(backend, starts), address(backend, nz), ppanels, k, n, address(backend, out), 4 * n, bias ? address(backend, bias) : 0, flags);
    gemmStats.products++;
    gemmStats.nonzeros += count;
    gemmStats.entries += m * k;
    return out;
  } finally {
    for (const t of [nz, starts, panels]) if (t) backend.disposeData(t.dataId);
  }
}
