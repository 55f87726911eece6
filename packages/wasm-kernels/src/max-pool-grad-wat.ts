/**
 * MaxPoolGrad for 2×2 windows with stride 2 that tile the input exactly (this project's
 * pool: 24×24 → 12×12), in WebAssembly text, assembled by max-pool-grad.ts with wabt.
 * Four channels at a time: each window's winner is found with lane masks instead of
 * branches, with the JavaScript kernel's rules (first maximum in row-major window order
 * wins a tie; NaN never wins; an all-NaN window sends its gradient nowhere).
 */
export const MAX_POOL_GRAD_WAT = String.raw`;; dx of a 2x2 stride-2 max pool on the tfjs wasm backend's memory (imported).
(module
  (import "env" "memory" (memory 0))

  ;; x and dx: [windowRows*2, ow*2, c] floats (windowRows = batch * output rows, the input
  ;; rows in pairs); dy: [windowRows, ow, c]. c >= 4: channels go four at a time, the last
  ;; group moved back to end at c (it overlaps the one before and writes the same values,
  ;; since every input pixel lies in exactly one window). Every dx element is written:
  ;; 0 + dy at a window's winner, 0 elsewhere (0 + dy as the JavaScript kernel adds dy to a
  ;; zeroed dx: a -0 gradient becomes +0 alike).
  (func $maxPoolGrad2x2 (export "maxPoolGrad2x2")
    (param $x i32) (param $dy i32) (param $dx i32) (param $windowRows i32) (param $ow i32) (param $c i32)
    (local $pixel i32) (local $rowBytes i32) (local $w i32) (local $ch i32) (local $last i32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $d i32) (local $o i32)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128) (local $best v128) (local $has v128)
    (local $m0 v128) (local $m1 v128) (local $m2 v128) (local $take v128) (local $g v128)
    (local.set $pixel (i32.shl (local.get $c) (i32.const 2)))                 ;; bytes per pixel
    (local.set $rowBytes (i32.mul (local.get $pixel) (i32.shl (local.get $ow) (i32.const 1))))
    (local.set $last (i32.shl (i32.sub (local.get $c) (i32.const 4)) (i32.const 2)))
    (local.set $d (local.get $dy))
    ;; dx has x's layout: a pixel's gradient is $o bytes from the pixel
    (local.set $o (i32.sub (local.get $dx) (local.get $x)))
    (block $done
      (br_if $done (i32.or (i32.eqz (local.get $windowRows)) (i32.eqz (local.get $ow))))
      (loop $windowRow
        (local.set $w (local.get $ow))
        (loop $window
          (local.set $ch (i32.const 0))
          (loop $group
            (local.set $p0 (i32.add (local.get $x) (local.get $ch)))
            (local.set $p1 (i32.add (local.get $p0) (local.get $pixel)))
            (local.set $p2 (i32.add (local.get $p0) (local.get $rowBytes)))
            (local.set $p3 (i32.add (local.get $p2) (local.get $pixel)))
            (local.set $x0 (v128.load align=4 (local.get $p0)))
            (local.set $x1 (v128.load align=4 (local.get $p1)))
            (local.set $x2 (v128.load align=4 (local.get $p2)))
            (local.set $x3 (v128.load align=4 (local.get $p3)))
            ;; pixel 0 wins where it is a number
            (local.set $has (f32x4.eq (local.get $x0) (local.get $x0)))
            (local.set $m0 (local.get $has))
            (local.set $best (local.get $x0))
            ;; pixel 1 takes over where it is a number and nothing won yet, or it is larger
            (local.set $take (v128.and (f32x4.eq (local.get $x1) (local.get $x1))
              (v128.or (v128.not (local.get $has)) (f32x4.gt (local.get $x1) (local.get $best)))))
            (local.set $best (v128.bitselect (local.get $x1) (local.get $best) (local.get $take)))
            (local.set $has (v128.or (local.get $has) (f32x4.eq (local.get $x1) (local.get $x1))))
            (local.set $m0 (v128.andnot (local.get $m0) (local.get $take)))
            (local.set $m1 (local.get $take))
            ;; pixel 2
            (local.set $take (v128.and (f32x4.eq (local.get $x2) (local.get $x2))
              (v128.or (v128.not (local.get $has)) (f32x4.gt (local.get $x2) (local.get $best)))))
            (local.set $best (v128.bitselect (local.get $x2) (local.get $best) (local.get $take)))
            (local.set $has (v128.or (local.get $has) (f32x4.eq (local.get $x2) (local.get $x2))))
            (local.set $m0 (v128.andnot (local.get $m0) (local.get $take)))
            (local.set $m1 (v128.andnot (local.get $m1) (local.get $take)))
            (local.set $m2 (local.get $take))
            ;; pixel 3 (its mask is $take)
            (local.set $take (v128.and (f32x4.eq (local.get $x3) (local.get $x3))
              (v128.or (v128.not (local.get $has)) (f32x4.gt (local.get $x3) (local.get $best)))))
            (local.set $m0 (v128.andnot (local.get $m0) (local.get $take)))
            (local.set $m1 (v128.andnot (local.get $m1) (local.get $take)))
            (local.set $m2 (v128.andnot (local.get $m2) (local.get $take)))
            ;; dx at each pixel: 0 + (dy where it won, else 0)
            (local.set $g (v128.load align=4 (i32.add (local.get $d) (local.get $ch))))
            (v128.store align=4 (i32.add (local.get $p0) (local.get $o))
              (f32x4.add (v128.const f32x4 0 0 0 0) (v128.and (local.get $g) (local.get $m0))))
            (v128.store align=4 (i32.add (local.get $p1) (local.get $o))
              (f32x4.add (v128.const f32x4 0 0 0 0) (v128.and (local.get $g) (local.get $m1))))
            (v128.store align=4 (i32.add (local.get $p2) (local.get $o))
              (f32x4.add (v128.const f32x4 0 0 0 0) (v128.and (local.get $g) (local.get $m2))))
            (v128.store align=4 (i32.add (local.get $p3) (local.get $o))
              (f32x4.add (v128.const f32x4 0 0 0 0) (v128.and (local.get $g) (local.get $take))))
            ;; next four channels; the last group ends at c
            (if (i32.lt_u (local.get $ch) (local.get $last))
              (then
                (local.set $ch (select (i32.add (local.get $ch) (i32.const 16)) (local.get $last)
                  (i32.lt_u (i32.add (local.get $ch) (i32.const 16)) (local.get $last))))
                (br $group))))
          ;; next window: two pixels right in x, one pixel in dy
          (local.set $x (i32.add (local.get $x) (i32.shl (local.get $pixel) (i32.const 1))))
          (local.set $d (i32.add (local.get $d) (local.get $pixel)))
          (br_if $window (local.tee $w (i32.sub (local.get $w) (i32.const 1)))))
        ;; skip the second input row of the pair: it belonged to these windows
        (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
        (br_if $windowRow (local.tee $windowRows (i32.sub (local.get $windowRows) (i32.const 1)))))))
)
`;
