/**
 * Column sums of a [rows, cols] float32 matrix in doubles (the bias gradients of the conv
 * and dense layers), in WebAssembly text, assembled by copy-free-kernels.ts with wabt.
 * Two columns at a time in f64x2 lanes, with exactly the JavaScript loop's additions:
 * per block of eight rows acc += ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)), the
 * remaining rows one by one, then each sum rounded to float32 once.
 */
export const SUM_ROWS_WAT = String.raw`;; Column sums on the tfjs wasm backend's memory (imported).
(module
  (import "env" "memory" (memory 0))

  ;; $acc: cols doubles of scratch (8-byte aligned); $out: cols floats.
  (func $sumRows (export "sumRows") (param $x i32) (param $rows i32) (param $cols i32) (param $acc i32) (param $out i32)
    (local $r i32) (local $c i32) (local $p i32) (local $a i32) (local $stride i32) (local $pairs i32)
    (local.set $stride (i32.shl (local.get $cols) (i32.const 2)))              ;; bytes per row
    (local.set $pairs (i32.and (local.get $cols) (i32.const -2)))             ;; columns in whole pairs
    ;; acc = 0
    (local.set $c (i32.const 0))
    (block $zeroed
      (loop $zero
        (br_if $zeroed (i32.ge_u (local.get $c) (local.get $cols)))
        (f64.store (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))) (f64.const 0))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $zero)))
    ;; blocks of eight rows
    (block $blocksDone
      (loop $block
        (br_if $blocksDone (i32.gt_u (i32.add (local.get $r) (i32.const 8)) (local.get $rows)))
        (local.set $p (i32.add (local.get $x) (i32.mul (local.get $r) (local.get $stride))))
        (local.set $a (local.get $acc))
        (local.set $c (i32.const 0))
        (block $pairsDone
          (loop $pair
            (br_if $pairsDone (i32.ge_u (local.get $c) (local.get $pairs)))
            (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a))
              (f64x2.add
                (f64x2.add
                  (f64x2.add ${row(0)} ${row(1)})
                  (f64x2.add ${row(2)} ${row(3)}))
                (f64x2.add
                  (f64x2.add ${row(4)} ${row(5)})
                  (f64x2.add ${row(6)} ${row(7)})))))
            (local.set $p (i32.add (local.get $p) (i32.const 8)))
            (local.set $a (i32.add (local.get $a) (i32.const 16)))
            (local.set $c (i32.add (local.get $c) (i32.const 2)))
            (br $pair)))
        ;; an odd last column, the same additions on scalars
        (if (i32.lt_u (local.get $c) (local.get $cols))
          (then
            (f64.store (local.get $a) (f64.add (f64.load (local.get $a))
              (f64.add
                (f64.add
                  (f64.add ${one(0)} ${one(1)})
                  (f64.add ${one(2)} ${one(3)}))
                (f64.add
                  (f64.add ${one(4)} ${one(5)})
                  (f64.add ${one(6)} ${one(7)})))))))
        (local.set $r (i32.add (local.get $r) (i32.const 8)))
        (br $block)))
    ;; the remaining rows one by one
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $p (i32.add (local.get $x) (i32.mul (local.get $r) (local.get $stride))))
        (local.set $c (i32.const 0))
        (block $colsDone
          (loop $col
            (br_if $colsDone (i32.ge_u (local.get $c) (local.get $cols)))
            (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
            (f64.store (local.get $a) (f64.add (f64.load (local.get $a))
              (f64.promote_f32 (f32.load (i32.add (local.get $p) (i32.shl (local.get $c) (i32.const 2)))))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $col)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row)))
    ;; out = float32(acc), rounded once
    (local.set $c (i32.const 0))
    (block $written
      (loop $write
        (br_if $written (i32.ge_u (local.get $c) (local.get $cols)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 2)))
          (f32.demote_f64 (f64.load (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $write))))
)
`;

/** Row q of the block, two columns from $p, widened to doubles. */
function row(q: number): string {
  return `(f64x2.promote_low_f32x4 (v128.load64_zero ${q === 0 ? '(local.get $p)' : `(i32.add (local.get $p) (i32.mul (local.get $stride) (i32.const ${q})))`}))`;
}

/** Row q of the block, the column at $p (an odd last column), widened to a double. */
function one(q: number): string {
  return `(f64.promote_f32 (f32.load ${q === 0 ? '(local.get $p)' : `(i32.add (local.get $p) (i32.mul (local.get $stride) (i32.const ${q})))`}))`;
}
