/*
 * C = op(A)·op(B) on the tfjs wasm backend's heap, skipping one operand's exact zeros
 * (gemm-simd-wat.ts): A's, or B's when computed as Cᵀ = op(B)ᵀ·op(A)ᵀ.
 *
 * Why: a training step's fc1 products (~432 MFLOP each) take most of its time, and their
 * operands are mostly zeros — the pool output after ReLU and dropout (forward, and the
 * filter gradient Xᵀ·dY), the fc1 gradient after ReLU and dropout (dY·Wᵀ, and Xᵀ·dY again,
 * where dY is the sparser side). A dense GEMM multiplies every one of them.
 *
 * Same bits as XNNPACK's wasm GEMM (the stock fast path): each output is
 * init + a₀b₀ + a₁b₁ + … in increasing k with separate multiply and add, init 0 or the
 * bias. Dropping a term with a ±0 factor leaves that sum unchanged as long as the sum is
 * not -0 and the other factor is finite: it never is -0 when it starts from +0 (an IEEE sum
 * is -0 only when both terms are), so a bias containing -0 is left to the stock kernel; an
 * infinite or NaN other factor (a diverged weight or activation) would give NaN there and a
 * number here, but training stops at a non-finite loss before that matters. NaN in the
 * skipped operand is not a zero and is kept.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { GEMM_SIMD_WAT, PANEL, gemmWat } from './gemm-simd-wat.ts';
import { heapF32 } from './wasm-backend.ts';
import { simdModule } from './simd-module.ts';

type Compress = (a: number, rows: number, cols: number, rowStep: number, colStep: number, bStride: number, nz: number, starts: number) => number;
type Pack = (b: number, k: number, n: number, rowStep: number, colStep: number, dst: number) => void;
type Product = (
  rows: number, starts: number, nz: number, panels: number, k: number, n: number,
  c: number, cRow: number, cCol: number, bias: number, flags: number,
) => void;

interface GemmModule {
  compress: Compress;
  pack: Pack;
  product: Product;
}

/** A packed panel row: PANEL floats. */
const PANEL_ROW_BYTES = 4 * PANEL;

export const GEMM_FLAGS = { biasFirst: 1, relu: 2 } as const;

const bindGemm = (exports: Record<string, unknown>): GemmModule => ({
  compress: exports['compress'] as Compress,
  pack: exports['pack'] as Pack,
  product: exports['product'] as Product,
});

/** The exact kernels bound to the backend's memory, or null where the runtime has no wasm SIMD. */
const exactGemmFor = simdModule('gemm-simd', GEMM_SIMD_WAT, bindGemm);

/**
 * The relaxed-SIMD variant (f32x4.relaxed_madd in the vector kernels), or null where the
 * runtime lacks relaxed SIMD (Node 20 needs --experimental-wasm-relaxed-simd; Node 24 has
 * it). Not XNNPACK's bits: each multiply-add rounds once where the CPU fuses it. Only used
 * when gemmLimits.relaxedFma is set (benchmarks); shipping it would need a version bump of
 * the training stages and an accuracy check.
 */
const relaxedGemmFor = simdModule('gemm-relaxed-fma', () => gemmWat({ relaxedFma: true }), bindGemm, { relaxed_simd: true });

/** The kernels to use on this backend (see gemmLimits.relaxedFma), or null. */
export function gemmFor(backend: BackendWasm): GemmModule | null {
  return gemmLimits.relaxedFma ? relaxedGemmFor(backend) : exactGemmFor(backend);
}

/** Whether this runtime can run the relaxed-SIMD variant. */
export function relaxedFmaAvailable(backend: BackendWasm): boolean {
  return relaxedGemmFor(backend) !== null;
}

function address(backend: BackendWasm, info: TensorInfo): number {
  return heapF32(backend, info).byteOffset;
}

/**
 * Tunables, exported for tests and benchmarks. Above `maxDensity` (non-zeros over entries
 * of the operand whose zeros would be skipped) the product goes back to XNNPACK. 1 (never)
 * by default: measured on this V8 (11.3, x64, fc1 shapes, CPU time interleaved), even a
 * dense A runs at 0.83-0.88x XNNPACK's time (0.89x at evaluation's ~93 % non-zeros, W
 * packed once by both), so there is nothing to hand back for.
 * `minWidth`: the fewest output columns (direct) or rows (transposed) worth compressing for.
 * `relaxedFma`: the experimental relaxed-SIMD kernels instead of the exact ones.
 * `transposed`: 'auto' computes Cᵀ = op(B)ᵀ·op(A)ᵀ instead when B's zeros save more (the
 * filter gradient Xᵀ·dY: dY is sparser than X); tests force either way.
 */
export const gemmLimits = { maxDensity: 1, minWidth: 64, transposed: 'auto' as 'auto' | 'never' | 'always', relaxedFma: false };

/**
 * How often the kernel ran (and of those, transposed), how often it packed a right
 * operand (not reused), how often it handed a too-dense product back (tests check it was used), and the nonzeros over the entries of the operand
 * whose zeros were skipped, summed over the products it ran.
 */
export const gemmStats = { products: 0, transposed: 0, tooDense: 0, packs: 0, nonzeros: 0, entries: 0 };

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

/** Byte steps of op(X) [rows×cols] stored row-major as [rows×cols], or as [cols×rows] when transposed. */
function steps(transposed: boolean, rows: number, cols: number): { row: number; col: number } {
  return transposed ? { row: 4, col: 4 * rows } : { row: 4 * cols, col: 4 };
}

/** The last right operand packed, per backend: a frozen weight (phase two's fc1) is packed once. */
const lastPacked = new WeakMap<BackendWasm, { dataId: object; transposeB: boolean; k: number; n: number; panels: TensorInfo }>();

/**
 * The address of op(B) packed in panels, packed now or reused from the previous call when
 * B is the same tensor (its dataId object: tensors are immutable, and a disposed tensor's
 * dataId never comes back). Like XNNPACK's packing cache, but one entry: replacing it
 * frees the old panels, so a weight that changes every step (training) costs no memory
 * beyond one packing.
 */
function packedB(backend: BackendWasm, gemm: GemmModule, b: TensorInfo, transposeB: boolean, k: number, n: number): number {
  const last = lastPacked.get(backend);
  const live = backend.dataIdMap.has(b.dataId);
  if (last && last.dataId === b.dataId && last.transposeB === transposeB && last.k === k && last.n === n && live) {
    return address(backend, last.panels);
  }
  if (last) backend.disposeData(last.panels.dataId);
  lastPacked.delete(backend);
  const panels = backend.makeOutput([Math.max(1, Math.ceil(n / PANEL) * PANEL * k)], 'float32');
  const sb = steps(transposeB, k, n);
  const pp = address(backend, panels); // after the allocation: the heap may have grown
  gemm.pack(address(backend, b), k, n, sb.row, sb.col, pp);
  lastPacked.set(backend, { dataId: b.dataId, transposeB, k, n, panels });
  gemmStats.packs++;
  return pp;
}

/**
 * Rows of the kernel's output per call of $product. $product walks every row's non-zeros
 * once per 20-column panel; for 1,000 rows (an evaluation batch) those lists are ~30 MB and
 * came from memory 25 times (700 ms, slower than XNNPACK). 128 rows keep a chunk's lists
 * within ~4 MB, in cache across the panels, and leave a training batch (100 rows) whole.
 */
export const ROWS_PER_CHUNK = 128;

function productInChunks(
  gemm: GemmModule, rows: number, starts: number, nz: number, panels: number, k: number, n: number,
  c: number, cRow: number, cCol: number, bias: number, flags: number,
): void {
  for (let r0 = 0; r0 < rows; r0 += ROWS_PER_CHUNK) {
    // Row starts index the whole non-zero list, so a chunk is the starts from its first row.
    gemm.product(Math.min(ROWS_PER_CHUNK, rows - r0), starts + 4 * r0, nz, panels, k, n, c + r0 * cRow, cRow, cCol, bias, flags);
  }
}

/** Relative cost of packing one element, or storing one output lane by lane, to a multiply-add. */
const PACK_COST = 2;
const SCATTER_COST = 2;

/**
 * A new [m, n] tensor (the caller owns it) with op(A)·op(B), or null when the operand whose
 * zeros it would skip is denser than gemmLimits.maxDensity.
 *
 * Either way round, each output is the same sum in the same k order: C[i, j] =
 * Σ_k A[i,k]·B[k,j] skipping the terms whose A (direct) or B (transposed) is zero.
 */
export function sparseProduct(backend: BackendWasm, gemm: GemmModule, args: SparseProductArgs): TensorInfo | null {
  const { a, transposeA, b, transposeB, m, k, n, bias, relu } = args;
  const scratch: TensorInfo[] = [];
  const alloc = (size: number, dtype: 'float32' | 'int32' = 'float32') => {
    const t = backend.makeOutput([Math.max(1, size)], dtype);
    scratch.push(t);
    return t;
  };
  try {
    const sa = steps(transposeA, m, k);
    const sb = steps(transposeB, k, n);
    // Each compressed element feeds as many multiply-adds as the output has columns (direct)
    // or rows (transposed); below gemmLimits.minWidth compressing and the per-row overhead
    // cost more than the skipped zeros save (the conv filter gradient, 25 taps × 30 filters
    // over 57,600 positions, ran 1.3-1.7x slower than XNNPACK), so XNNPACK keeps it.
    // Cᵀ = op(B)ᵀ·op(A)ᵀ skips B's zeros: only without an epilogue (a bias is per column of
    // C), and only when B is not much larger than A (compressing it costs a pass).
    const transposedOk =
      gemmLimits.transposed !== 'never' && !bias && !relu && m >= gemmLimits.minWidth && (gemmLimits.transposed === 'always' || k * n <= 2 * m * k);
    const directOk = n >= gemmLimits.minWidth && !(gemmLimits.transposed === 'always' && transposedOk);
    if (!directOk && !transposedOk) return null;
    let way: 'direct' | 'transposed' = directOk ? 'direct' : 'transposed';
    // The nonzeros of op(A)'s rows, as (offset in a panel, value) pairs, and row starts.
    let nzA: TensorInfo | undefined;
    let startsA: TensorInfo | undefined;
    let countA = 0;
    let directCost = Infinity;
    if (directOk) {
      nzA = alloc(2 * m * k);
      startsA = alloc(m + 1, 'int32');
      countA = gemm.compress(address(backend, a), m, k, sa.row, sa.col, PANEL_ROW_BYTES, address(backend, nzA), address(backend, startsA));
      directCost = countA * n + PACK_COST * k * n;
    }
    let nzB: TensorInfo | undefined;
    let startsB: TensorInfo | undefined;
    let countB = 0;
    if (transposedOk) {
      nzB = alloc(2 * k * n);
      startsB = alloc(n + 1, 'int32');
      // Row j of op(B)ᵀ is column j of op(B).
      countB = gemm.compress(address(backend, b), n, k, sb.col, sb.row, PANEL_ROW_BYTES, address(backend, nzB), address(backend, startsB));
      const transposedCost = countB * m + PACK_COST * k * m + SCATTER_COST * m * n;
      if (transposedCost < directCost) way = 'transposed';
    }
    const [count, entries] = way === 'direct' ? [countA, m * k] : [countB, k * n];
    if (count > gemmLimits.maxDensity * entries) {
      gemmStats.tooDense++;
      return null;
    }
    const out = backend.makeOutput([m, n], 'float32');
    const flags = (bias ? GEMM_FLAGS.biasFirst : 0) | (relu ? GEMM_FLAGS.relu : 0);
    if (way === 'direct') {
      // op(B) in panels of PANEL columns (gemm-simd-wat.ts $pack), rows of C written whole.
      const pp = packedB(backend, gemm, b, transposeB, k, n);
      productInChunks(gemm, m, address(backend, startsA!), address(backend, nzA!), pp, k, n, address(backend, out), 4 * n, 4, bias ? address(backend, bias) : 0, flags);
    } else {
      // op(A)ᵀ [k×m] in panels; row j of the kernel's output is column j of C.
      const panels = alloc(Math.ceil(m / PANEL) * PANEL * k);
      const pp = address(backend, panels);
      gemm.pack(address(backend, a), k, m, sa.col, sa.row, pp);
      productInChunks(gemm, n, address(backend, startsB!), address(backend, nzB!), pp, k, m, address(backend, out), 4, 4 * n, 0, flags);
      gemmStats.transposed++;
    }
    gemmStats.products++;
    gemmStats.nonzeros += count;
    gemmStats.entries += entries;
    return out;
  } finally {
    for (const t of scratch) backend.disposeData(t.dataId);
  }
}
