import { BatchMatMul, _FusedMatMul, broadcast_util, util } from '@tensorflow/tfjs-core';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { WASM, copyRows, heapF32, markAsGraftKernel, stockKernel, view } from './wasm-backend.ts';
import type { WasmKernelFunc } from './wasm-backend.ts';
import { gemmFor, sparseProduct } from './gemm.ts';

/*
 * The stock wasm BatchMatMul hands the product to XNNPACK only when neither operand is
 * transposed and both have batch 1; anything else (every dense backward pass, any
 * batched product) runs a scalar triple loop at ~1-2 GFLOP/s instead of ~20-30. These
 * wrappers reshape every case into that one fast case: transposes are materialised with
 * the wasm Transpose kernel (a copy costs far less than the slow multiply), a batch that
 * multiplies one shared right operand is folded into the rows, and other batches run as
 * one fast 2-D product per batch entry.
 *
 * Large single products (the fc1 products of a training step) go to graft's own GEMM
 * instead (gemm.ts), which skips the zeros dropout and ReLU leave in the left operand and
 * gives XNNPACK's result bit for bit.
 */

/** Below this many multiply-adds per batch entry, per-entry calls cost more than the slow loop saves. */
const MIN_WORK_PER_ENTRY = 32 * 32 * 32;

/**
 * Products of at least this many multiply-adds (batch 1) go to graft's zero-skipping GEMM
 * (gemm.ts) when the runtime has wasm SIMD: the fc1 products of a training step (~216M
 * each). Smaller ones (the head's) cost more in scratch set-up than skipping saves.
 */
export const sparseGemm = { enabled: true, minWork: 1 << 20 };

/** Switches graft's zero-skipping GEMM on or off (benchmarks and tests compare it with XNNPACK). */
export function setGemmKernels(on: boolean): void {
  sparseGemm.enabled = on;
}

/** op(A)·op(B) on graft's GEMM, or null when it does not take this case. */
function trySparse(
  backend: BackendWasm,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  d: Dims,
  epilogue: { bias?: TensorInfo; relu?: boolean } = {},
): TensorInfo | null {
  const { batch, m, k, n } = d;
  if (!sparseGemm.enabled || batch !== 1 || m * k * n < sparseGemm.minWork) return null;
  const gemm = gemmFor(backend);
  if (gemm === null) return null;
  return sparseProduct(backend, gemm, { a, transposeA, b, transposeB, m, k, n, ...epilogue });
}

type Dims = { batchA: number; batchB: number; batch: number; m: number; k: number; n: number };

function dims(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): Dims {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  util.assert(
    k === kb,
    () =>
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} ` +
      `and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
  );
  const batchA = util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = util.sizeFromShape(b.shape.slice(0, -2));
  return { batchA, batchB, batch: Math.max(batchA, batchB), m, k, n };
}

/**
 * `x` as an untransposed [batch, rows, cols] operand. Returns the tensor and whether the
 * caller owns it (a copy made here) or it is a view of `x` (must not be disposed).
 */
function untransposed(
  backend: BackendWasm,
  x: TensorInfo,
  batch: number,
  rows: number,
  cols: number,
  transposed: boolean,
): { info: TensorInfo; owned: boolean } {
  // With a unit inner dimension the transpose leaves the memory order unchanged.
  if (!transposed || rows === 1 || cols === 1) return { info: view(x, [batch, rows, cols]), owned: false };
  const transpose = stockKernel('Transpose').kernelFunc as unknown as WasmKernelFunc;
  const info = transpose({ inputs: { x: view(x, [batch, cols, rows]) }, backend, attrs: { perm: [0, 2, 1] } });
  return { info, owned: true };
}

function release(backend: BackendWasm, ...operands: { info: TensorInfo; owned: boolean }[]): void {
  for (const o of operands) if (o.owned) backend.disposeData(o.info.dataId);
}

/** out[i] = A[i % batchA] @ B[i % batchB] (tfjs broadcasts flattened batch dims this way), one fast call each. */
function perEntry(
  backend: BackendWasm,
  fast: (a: TensorInfo, b: TensorInfo) => TensorInfo,
  a3: TensorInfo,
  b3: TensorInfo,
  d: Dims,
): TensorInfo {
  const { batchA, batchB, batch, m, k, n } = d;
  const out = backend.makeOutput([batch, m, n], 'float32');
  for (let i = 0; i < batch; i++) {
    // Slices are fresh tensors every time: XNNPACK caches its packed right operand under
    // the tensor id, so reusing a buffer with new contents would multiply stale weights.
    const ai = batchA === 1 ? view(a3, [m, k]) : copyRows(backend, a3, m * k, i % batchA, 1, [m, k]);
    const bi = batchB === 1 ? view(b3, [k, n]) : copyRows(backend, b3, k * n, i % batchB, 1, [k, n]);
    const oi = fast(ai, bi);
    heapF32(backend, out).set(heapF32(backend, oi), i * m * n);
    backend.disposeData(oi.dataId);
    if (batchA !== 1) backend.disposeData(ai.dataId);
    if (batchB !== 1) backend.disposeData(bi.dataId);
  }
  return out;
}

/*
 * For a single product C = op(A) @ op(B) there are two ways onto the fast path:
 *   direct:      C   = op(A) @ op(B)        (transpose whichever operand is stored transposed)
 *   transposed:  Cᵀ = op(B)ᵀ @ op(A)ᵀ, then transpose Cᵀ
 * XNNPACK repacks its right operand on first use (cached under the tensor id), which costs
 * ~3.5x a transpose per element. The dense backward pass dy @ Wᵀ is the case that
 * matters: direct transposes and packs the 4320x500 kernel, transposed only touches the
 * 100-row dy and the output. Costs are in element copies, weighted as measured.
 */
const TRANSPOSE_COST = 1;
const PACK_COST = 3.5;

/**
 * Right operands seen before. A weight used once per value (training) is best multiplied
 * transposed; one used again (evaluation over many batches) is worth packing once, since
 * XNNPACK keeps the packed copy for as long as the tensor lives.
 */
const seenAsRight = new WeakSet<object>();

function chooseTransposed(transposeA: boolean, transposeB: boolean, reused: boolean, d: Dims): boolean {
  const { m, k, n } = d;
  const sizeA = m * k;
  const sizeB = k * n;
  const moves = (size: number, rows: number, cols: number) => (rows === 1 || cols === 1 ? 0 : size * TRANSPOSE_COST);
  const directPack = !transposeB && reused ? 0 : sizeB * PACK_COST;
  const direct = (transposeA ? moves(sizeA, m, k) : 0) + (transposeB ? moves(sizeB, k, n) : 0) + directPack;
  const transposed =
    (transposeB ? 0 : moves(sizeB, k, n)) + (transposeA ? 0 : moves(sizeA, m, k)) + sizeA * PACK_COST + moves(m * n, m, n);
  return transposed < direct;
}

function batchMatMulConfig(): KernelConfig {
  const stock = stockKernel(BatchMatMul);
  const stockFunc = stock.kernelFunc as unknown as WasmKernelFunc;
  const transposeFunc = stockKernel('Transpose').kernelFunc as unknown as WasmKernelFunc;

  const kernelFunc: WasmKernelFunc = (args) => {
    const { backend } = args;
    const a = args.inputs['a']!;
    const b = args.inputs['b']!;
    const transposeA = args.attrs?.['transposeA'] === true;
    const transposeB = args.attrs?.['transposeB'] === true;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return stockFunc(args);
    const d = dims(a, b, transposeA, transposeB);
    const { batchA, batchB, batch, m, k, n } = d;
    if (batch > 1 && batchA === batchB && m * k * n < MIN_WORK_PER_ENTRY) return stockFunc(args);

    const outShape = broadcast_util
      .assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2))
      .concat([m, n]);
    const fast = (x: TensorInfo, y: TensorInfo): TensorInfo =>
      stockFunc({ inputs: { a: x, b: y }, backend, attrs: { transposeA: false, transposeB: false } });
    const reused = seenAsRight.has(b.dataId);
    seenAsRight.add(b.dataId);

    const sparse = trySparse(backend, a, b, transposeA, transposeB, d);
    let out: TensorInfo;
    if (sparse !== null) {
      out = sparse;
    } else if (batch === 1 && chooseTransposed(transposeA, transposeB, reused, d)) {
      const bT = untransposed(backend, b, 1, n, k, !transposeB);
      const aT = untransposed(backend, a, 1, k, m, !transposeA);
      let outT: TensorInfo;
      try {
        outT = fast(view(bT.info, [n, k]), view(aT.info, [k, m]));
      } finally {
        release(backend, aT, bT);
      }
      if (m === 1 || n === 1) {
        out = outT;
      } else {
        out = transposeFunc({ inputs: { x: view(outT, [n, m]) }, backend, attrs: { perm: [1, 0] } });
        backend.disposeData(outT.dataId);
      }
    } else if (batchA === 1 && batchB === 1 && !transposeA && !transposeB) {
      out = fast(view(a, [m, k]), view(b, [k, n]));
    } else {
      const a3 = untransposed(backend, a, batchA, m, k, transposeA);
      const b3 = untransposed(backend, b, batchB, k, n, transposeB);
      try {
        // Rows of every batch entry share one right operand: a single [batch*m, k] product.
        out =
          batchB === 1
            ? fast(view(a3.info, [batchA * m, k]), view(b3.info, [k, n]))
            : perEntry(backend, fast, a3.info, b3.info, d);
      } finally {
        release(backend, a3, b3);
      }
    }
    out.shape = outShape;
    return out;
  };

  return { ...stock, kernelName: BatchMatMul, backendName: WASM, kernelFunc: markAsGraftKernel(kernelFunc) };
}

/**
 * A bias graft's GEMM can start its sums from: float32, one value per column, no -0 (a sum
 * starting at -0 may end at -0 or +0 depending on the terms it skips; see gemm.ts).
 */
function usableBias(backend: BackendWasm, bias: TensorInfo, n: number): boolean {
  if (bias.dtype !== 'float32' || util.sizeFromShape(bias.shape) !== n) return false;
  const values = heapF32(backend, bias);
  for (let j = 0; j < n; j++) if (values[j] === 0 && Object.is(values[j], -0)) return false;
  return true;
}

/**
 * _FusedMatMul (tf.fused.matMul, used by tfjs-layers' Dense) gets rank-3 operands. Large
 * single products with a per-column bias and ReLU or no activation go to graft's GEMM
 * (the frozen base of phase two). Otherwise only the cases the stock fast path computes the same way are rerouted: transposed operands
 * with batch 1 (or a batched left operand over a shared right one), a bias of one value
 * per output column or none. The stock slow loop indexes a bias by the flat output
 * position clamped to its length, so it is kept for the shapes that rely on that.
 */
function fusedMatMulConfig(): KernelConfig {
  const stock = stockKernel(_FusedMatMul);
  const stockFunc = stock.kernelFunc as unknown as WasmKernelFunc;

  const kernelFunc: WasmKernelFunc = (args) => {
    const { backend, inputs, attrs } = args;
    const a = inputs['a']!;
    const b = inputs['b']!;
    const bias = inputs['bias'];
    const transposeA = attrs?.['transposeA'] === true;
    const transposeB = attrs?.['transposeB'] === true;
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length !== 3 || b.shape.length !== 3) {
      return stockFunc(args);
    }
    const d = dims(a, b, transposeA, transposeB);
    const { batchA, batchB, m, k, n } = d;
    const activation = attrs?.['activation'] ?? 'linear';
    if (
      (activation === 'linear' || activation === 'relu') &&
      inputs['preluActivationWeights'] === undefined &&
      (bias === undefined || usableBias(backend, bias, n))
    ) {
      const out = trySparse(backend, a, b, transposeA, transposeB, d, { bias, relu: activation === 'relu' });
      if (out !== null) {
        out.shape = [1, m, n];
        return out;
      }
    }
    if (!transposeA && !transposeB) return stockFunc(args);
    if (batchB !== 1 || (bias !== undefined && util.sizeFromShape(bias.shape) !== n)) return stockFunc(args);

    const a3 = untransposed(backend, a, batchA, m, k, transposeA);
    const b3 = untransposed(backend, b, 1, k, n, transposeB);
    let out: TensorInfo;
    try {
      out = stockFunc({
        inputs: { ...inputs, a: view(a3.info, [1, batchA * m, k]), b: b3.info },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
    } finally {
      release(backend, a3, b3);
    }
    out.shape = [batchA, m, n];
    return out;
  };

  return { ...stock, kernelName: _FusedMatMul, backendName: WASM, kernelFunc: markAsGraftKernel(kernelFunc) };
}

export { batchMatMulConfig, fusedMatMulConfig };
