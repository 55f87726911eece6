/**
 * The sparse-row matrix product in WebAssembly text format, assembled by gemm-simd.ts with
 * wabt when first used. The column-block kernels differ only in how many accumulators they
 * keep, so the text of each is produced by `rowsKernel(width)` below from one template; the
 * assembled module is what `GEMM_SIMD_WAT` holds (print it to read the whole thing).
 *
 * The product C = A·B is computed row by row of A, skipping A's exact zeros: a training
 * step's operands are half zeros or more (dropout masks, ReLU), and a zero term leaves a
 * sum unchanged. Each output element is accumulated over k in increasing order with a
 * separate multiply and add, starting from 0 (or the bias), as XNNPACK's f32 GEMM does on
 * wasm SIMD, so the result is the same bit for bit (see gemm.ts for the one exception).
 */

/** One line per accumulator v = 0 .. count-1. */
function each(count: number, line: (v: number) => string): string {
  return Array.from({ length: count }, (_, v) => line(v)).join('\n');
}

/**
 * `$rows<width>`, width 1 .. PANEL: for every row r of A (rows > 0), `width` columns of C:
 *   C[r, j] = epilogue(init + Σ_{t in row r's nonzeros} value_t · B[k_t, j])
 * Row r's nonzeros are the 8-byte entries [starts[r], starts[r+1]) of $nz: an i32 byte
 * offset of B's row k_t in the panel (k_t · 4·PANEL) and the f32 value A[r, k_t].
 * width = 4V + S: V four-lane accumulators, then S (0-3) scalar ones for the last columns.
 * C[r, j] is stored at $c + r·$cRow + j·$cCol bytes: $cCol = 4 (rows of C, vector stores)
 * or anything else (C written transposed, lane by lane).
 * $flags: 1 = start from the bias (at $bias, one value per column) instead of 0, 2 = ReLU.
 */
function rowsKernel(width: number, relaxedFma: boolean): string {
  const V = width >> 2;
  const S = width & 3;
  const vecs = (line: (v: number) => string) => each(V, line);
  const scal = (line: (s: number) => string) => each(S, line);
  const vOff = (v: number) => v * 16;
  const sOff = (s: number) => V * 16 + s * 4;
  const reluV = (x: string) => `(f32x4.pmax (v128.const f32x4 0 0 0 0) ${x})`;
  const reluS = (x: string) => `(select ${x} (f32.const 0) (f32.gt ${x} (f32.const 0)))`;
  return `
  (func $rows${width} (type $rowsType)
    (param $rows i32) (param $starts i32) (param $nz i32) (param $b i32) (param $c i32) (param $cRow i32) (param $cCol i32) (param $bias i32) (param $flags i32)
    (local $p i32) (local $end i32) (local $bp i32) (local $a v128) (local $as f32)
${vecs((v) => `    (local $acc${v} v128)`)}
${scal((t) => `    (local $sacc${t} f32)`)}
    (loop $row
      (if (i32.and (local.get $flags) (i32.const 1))
        (then
${vecs((v) => `          (local.set $acc${v} (v128.load offset=${vOff(v)} (local.get $bias)))`)}
${scal((t) => `          (local.set $sacc${t} (f32.load offset=${sOff(t)} (local.get $bias)))`)}
          (nop))
        (else
${vecs((v) => `          (local.set $acc${v} (v128.const f32x4 0 0 0 0))`)}
${scal((t) => `          (local.set $sacc${t} (f32.const 0))`)}
          (nop)))
      (local.set $p (i32.add (local.get $nz) (i32.shl (i32.load (local.get $starts)) (i32.const 3))))
      (local.set $end (i32.add (local.get $nz) (i32.shl (i32.load offset=4 (local.get $starts)) (i32.const 3))))
      (if (i32.lt_u (local.get $p) (local.get $end))
        (then
          (loop $k
            ;; acc += a · B[k, j..]: one multiply, one add, in k order (no fused multiply-add)
            (local.set $bp (i32.add (local.get $b) (i32.load (local.get $p))))
${V > 0 ? `            (local.set $a (v128.load32_splat offset=4 (local.get $p)))` : ''}
${S > 0 ? `            (local.set $as (f32.load offset=4 (local.get $p)))` : ''}
${vecs((v) =>
  relaxedFma
    ? `            (local.set $acc${v} (f32x4.relaxed_madd (local.get $a) (v128.load offset=${vOff(v)} (local.get $bp)) (local.get $acc${v})))`
    : `            (local.set $acc${v} (f32x4.add (local.get $acc${v}) (f32x4.mul (local.get $a) (v128.load offset=${vOff(v)} (local.get $bp)))))`,
)}
${scal((t) => `            (local.set $sacc${t} (f32.add (local.get $sacc${t}) (f32.mul (local.get $as) (f32.load offset=${sOff(t)} (local.get $bp)))))`)}
            (br_if $k (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 8))) (local.get $end))))))
      (if (i32.and (local.get $flags) (i32.const 2))
        (then
${vecs((v) => `          (local.set $acc${v} ${reluV(`(local.get $acc${v})`)})`)}
${scal((t) => `          (local.set $sacc${t} ${reluS(`(local.get $sacc${t})`)})`)}
          (nop)))
      (if (i32.eq (local.get $cCol) (i32.const 4))
        (then
${vecs((v) => `          (v128.store offset=${vOff(v)} (local.get $c) (local.get $acc${v}))`)}
${scal((t) => `          (f32.store offset=${sOff(t)} (local.get $c) (local.get $sacc${t}))`)}
          (nop))
        (else
${vecs((v) => each(4, (l) => `          (f32.store (i32.add (local.get $c) (i32.mul (local.get $cCol) (i32.const ${4 * v + l}))) (f32x4.extract_lane ${l} (local.get $acc${v})))`))}
${scal((t) => `          (f32.store (i32.add (local.get $c) (i32.mul (local.get $cCol) (i32.const ${4 * V + t}))) (local.get $sacc${t}))`)}
          (nop)))
      (local.set $c (i32.add (local.get $c) (local.get $cRow)))
      (local.set $starts (i32.add (local.get $starts) (i32.const 4)))
      (br_if $row (local.tee $rows (i32.sub (local.get $rows) (i32.const 1))))))
`;
}

/**
 * The panel width: B is packed in panels of this many columns, and C's columns go this
 * many at a time, then one kernel of the remaining width. V8 (11.3, x64) loads all of a
 * kernel's B vectors before its arithmetic, so 8 accumulators (32 columns) run out of
 * its 15 vector registers and spill every iteration; measured per product (CPU time,
 * interleaved, fc1 shapes): 32 columns 1.2-1.4x slower than 20-28, which are equal
 * within noise; 16 is as fast for dX but slower forward. 20 leaves registers to spare
 * and divides 500 and 4320.
 */
export const PANEL = 20;
/** Bytes of a panel row. */
const ROW = PANEL * 4;
const WIDTHS = Array.from({ length: PANEL }, (_, i) => i + 1);

/** i8x16.shuffle picking four 32-bit lanes (0-3 from the first operand, 4-7 from the second). */
function shuffle(lanes: [number, number, number, number]): string {
  return `i8x16.shuffle ${lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]).join(' ')}`;
}

/**
 * The module's text. `relaxedFma` builds the experimental variant whose vector kernels use
 * f32x4.relaxed_madd (one fused multiply-add where the CPU has FMA, so each sum is rounded
 * differently: not XNNPACK's bits; benchmarks only, see gemm.ts).
 */
export function gemmWat(options: { relaxedFma?: boolean } = {}): string {
  const relaxedFma = options.relaxedFma === true;
  return String.raw`;; A·B with A's exact zeros skipped, on the tfjs wasm backend's memory (imported).
(module
  (import "env" "memory" (memory 0))
  (type $rowsType (func (param i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  ;; $rows<w> at index w, for the last columns of C whatever their count
  (table ${PANEL + 1} funcref)
  (elem (i32.const 1) ${WIDTHS.map((w) => `$rows${w}`).join(' ')})

  ;; The nonzeros of A, one row of the product at a time. Row r of the product reads
  ;; A[r*rowStep + c*colStep] for c = 0 .. cols-1 (byte strides, so a column of A works
  ;; as a row). Writes each nonzero as (c * bStride, value) to $nz, 8 bytes each, and
  ;; starts[r+1] = the running count (starts[0] = 0); returns the count. -0 counts as
  ;; zero, NaN does not. Branch-free: every entry is written, the pointer moves only past
  ;; nonzeros.
  (func $compress (export "compress")
    (param $a i32) (param $rows i32) (param $cols i32) (param $rowStep i32) (param $colStep i32) (param $bStride i32)
    (param $nz i32) (param $starts i32) (result i32)
    (local $r i32) (local $c i32) (local $src i32) (local $out i32) (local $off i32) (local $v f32)
    (local.set $out (local.get $nz))
    (i32.store (local.get $starts) (i32.const 0))
    (block $rowsDone
      (br_if $rowsDone (i32.eqz (local.get $rows)))
      (loop $row
        (local.set $src (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $rowStep))))
        (local.set $off (i32.const 0))
        (local.set $c (local.get $cols))
        (block $colsDone
          (br_if $colsDone (i32.eqz (local.get $c)))
          (loop $col
            (local.set $v (f32.load (local.get $src)))
            (i32.store (local.get $out) (local.get $off))
            (f32.store offset=4 (local.get $out) (local.get $v))
            (local.set $out (i32.add (local.get $out) (i32.shl (f32.ne (local.get $v) (f32.const 0)) (i32.const 3))))
            (local.set $src (i32.add (local.get $src) (local.get $colStep)))
            (local.set $off (i32.add (local.get $off) (local.get $bStride)))
            (br_if $col (local.tee $c (i32.sub (local.get $c) (i32.const 1))))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (i32.store (i32.add (local.get $starts) (i32.shl (local.get $r) (i32.const 2)))
          (i32.shr_u (i32.sub (local.get $out) (local.get $nz)) (i32.const 3)))
        (br_if $row (i32.lt_u (local.get $r) (local.get $rows)))))
    (i32.shr_u (i32.sub (local.get $out) (local.get $nz)) (i32.const 3)))
${WIDTHS.map((w) => rowsKernel(w, relaxedFma)).join('')}
  ;; B [k×n] (element (r, j) at $b + r·$rowStep + j·$colStep bytes, so a transposed B
  ;; is packed as easily) copied into panels of ${PANEL} columns: panel p holds B[r, ${PANEL}p + i]
  ;; at $dst + p·k·${ROW} + r·${ROW} + 4i, every row of a panel in one ${ROW}-byte run, so the
  ;; product walks memory forward instead of striding over B's full rows. The last
  ;; panel's columns past n are left unwritten (never read).
  (func $pack (export "pack")
    (param $b i32) (param $k i32) (param $n i32) (param $rowStep i32) (param $colStep i32) (param $dst i32)
    (local $j i32) (local $r i32) (local $i i32) (local $w i32) (local $src i32) (local $row i32) (local $out i32)
    (local $q0 v128) (local $q1 v128) (local $q2 v128) (local $q3 v128) (local $lo v128) (local $hi v128) (local $lo2 v128) (local $hi2 v128)
    (block $panelsDone
      (loop $panel
        (br_if $panelsDone (i32.ge_u (local.get $j) (local.get $n)))
        ;; columns in this panel: min(${PANEL}, n - j)
        (local.set $w (select (i32.const ${PANEL}) (i32.sub (local.get $n) (local.get $j))
          (i32.ge_u (i32.sub (local.get $n) (local.get $j)) (i32.const ${PANEL}))))
        (local.set $row (i32.add (local.get $b) (i32.mul (local.get $j) (local.get $colStep))))
        (local.set $r (i32.const 0))
        ;; A transposed B (its rows are columns in memory), whole panel: 4 rows at a time as
        ;; 4×4 blocks, each loaded as 4 vectors down memory and transposed by shuffles.
        (if (i32.and (i32.eq (local.get $w) (i32.const ${PANEL})) (i32.eq (local.get $rowStep) (i32.const 4)))
          (then
            (block $quadsDone
              (loop $quad
                (br_if $quadsDone (i32.gt_u (i32.add (local.get $r) (i32.const 4)) (local.get $k)))
                (local.set $src (local.get $row))
${each(PANEL / 4, (g) => `                ;; columns ${4 * g}-${4 * g + 3}
                (local.set $q0 (v128.load align=4 (local.get $src)))
                (local.set $q1 (v128.load align=4 (local.tee $src (i32.add (local.get $src) (local.get $colStep)))))
                (local.set $q2 (v128.load align=4 (local.tee $src (i32.add (local.get $src) (local.get $colStep)))))
                (local.set $q3 (v128.load align=4 (local.tee $src (i32.add (local.get $src) (local.get $colStep)))))
                (local.set $src (i32.add (local.get $src) (local.get $colStep)))
                (local.set $lo (${shuffle([0, 4, 1, 5])} (local.get $q0) (local.get $q1)))
                (local.set $hi (${shuffle([2, 6, 3, 7])} (local.get $q0) (local.get $q1)))
                (local.set $lo2 (${shuffle([0, 4, 1, 5])} (local.get $q2) (local.get $q3)))
                (local.set $hi2 (${shuffle([2, 6, 3, 7])} (local.get $q2) (local.get $q3)))
                (v128.store offset=${16 * g} (local.get $dst) (${shuffle([0, 1, 4, 5])} (local.get $lo) (local.get $lo2)))
                (v128.store offset=${ROW + 16 * g} (local.get $dst) (${shuffle([2, 3, 6, 7])} (local.get $lo) (local.get $lo2)))
                (v128.store offset=${2 * ROW + 16 * g} (local.get $dst) (${shuffle([0, 1, 4, 5])} (local.get $hi) (local.get $hi2)))
                (v128.store offset=${3 * ROW + 16 * g} (local.get $dst) (${shuffle([2, 3, 6, 7])} (local.get $hi) (local.get $hi2)))`)}
                (local.set $dst (i32.add (local.get $dst) (i32.const ${4 * ROW})))
                (local.set $row (i32.add (local.get $row) (i32.const 16)))
                (local.set $r (i32.add (local.get $r) (i32.const 4)))
                (br $quad)))))
        ;; the rest row by row: whole rows of an untransposed B as vectors, anything else
        ;; element by element
        (block $rowsDone
          (loop $nextRow
            (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $k)))
            (if (i32.and (i32.eq (local.get $w) (i32.const ${PANEL})) (i32.eq (local.get $colStep) (i32.const 4)))
              (then
${each(PANEL / 4, (v) => `                (v128.store offset=${v * 16} (local.get $dst) (v128.load offset=${v * 16} align=4 (local.get $row)))`)})
              (else
                (local.set $src (local.get $row))
                (local.set $out (local.get $dst))
                (local.set $i (local.get $w))
                (loop $col
                  (f32.store (local.get $out) (f32.load (local.get $src)))
                  (local.set $src (i32.add (local.get $src) (local.get $colStep)))
                  (local.set $out (i32.add (local.get $out) (i32.const 4)))
                  (br_if $col (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))))
            (local.set $dst (i32.add (local.get $dst) (i32.const ${ROW})))
            (local.set $row (i32.add (local.get $row) (local.get $rowStep)))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $nextRow)))
        (local.set $j (i32.add (local.get $j) (i32.const ${PANEL})))
        (br $panel))))

  ;; C = epilogue(init + A·B) over every column, B packed by $pack ($nz offsets are r·${ROW}):
  ;; blocks of ${PANEL} columns, then one kernel for the rest. Column j of B is in panel j/${PANEL}
  ;; at 4·(j mod ${PANEL}) bytes; C[r, j] is at $c + r·$cRow + j·$cCol; the bias has one value per
  ;; column (4·j bytes from its start).
  (func $product (export "product")
    (param $rows i32) (param $starts i32) (param $nz i32) (param $panels i32) (param $k i32) (param $n i32)
    (param $c i32) (param $cRow i32) (param $cCol i32) (param $bias i32) (param $flags i32)
    (local $j i32) (local $panel i32)
    (local.set $panel (local.get $panels))
    (block $full
      (loop $next
        (br_if $full (i32.gt_u (i32.add (local.get $j) (i32.const ${PANEL})) (local.get $n)))
        (call $rows${PANEL} (local.get $rows) (local.get $starts) (local.get $nz) (local.get $panel)
          (i32.add (local.get $c) (i32.mul (local.get $j) (local.get $cCol))) (local.get $cRow) (local.get $cCol)
          (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2))) (local.get $flags))
        (local.set $panel (i32.add (local.get $panel) (i32.mul (local.get $k) (i32.const ${ROW}))))
        (local.set $j (i32.add (local.get $j) (i32.const ${PANEL})))
        (br $next)))
    (if (i32.lt_u (local.get $j) (local.get $n))
      (then
        (call_indirect (type $rowsType) (local.get $rows) (local.get $starts) (local.get $nz) (local.get $panel)
          (i32.add (local.get $c) (i32.mul (local.get $j) (local.get $cCol))) (local.get $cRow) (local.get $cCol)
          (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2))) (local.get $flags)
          (i32.sub (local.get $n) (local.get $j))))))
)
`;
}

export const GEMM_SIMD_WAT = gemmWat();
