/**
 * The SIMD module's source in WebAssembly text format (what a .wat file holds), kept in a
 * TypeScript string so it travels with the sources into any bundle; adam-simd.ts assembles
 * it with wabt when the module loads.
 */
export const ADAM_SIMD_WAT = String.raw`;; Adam's elementwise update and a sum of squares as WebAssembly SIMD, working directly on
;; the tfjs wasm backend's memory (imported, so no copies). Assembled by adam-simd.ts with
;; wabt when the module loads. f32x4 arithmetic is IEEE float32 with round-to-nearest in
;; every lane, exactly like the scalar float32 kernels tfjs runs op by op, and every
;; operation below is in the order tf.train.adam applies them (see fused-adam.ts).
(module
  (import "env" "memory" (memory 0))

  ;; out = (m'/c1) / (sqrt(v'/c2) + eps) * nlr + w, with m' = m*b1 + g*omb1 and
  ;; v' = v*b2 + (g*g)*omb2 written back to m and v. Pointers are byte addresses; $bytes is
  ;; a multiple of 16. $decay is unused here (see $adamDecay).
  (func $adam (export "adam")
    (param $out i32) (param $w i32) (param $g i32) (param $m i32) (param $v i32) (param $bytes i32)
    (param $b1 f32) (param $omb1 f32) (param $b2 f32) (param $omb2 f32) (param $c1 f32) (param $c2 f32) (param $eps f32) (param $nlr f32) (param $decay f32)
    (local $i i32)
    (local $B1 v128) (local $OMB1 v128) (local $B2 v128) (local $OMB2 v128) (local $C1 v128) (local $C2 v128) (local $EPS v128) (local $NLR v128)
    (local $gv v128) (local $mv v128) (local $vv v128)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $OMB1 (f32x4.splat (local.get $omb1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $OMB2 (f32x4.splat (local.get $omb2)))
    (local.set $C1 (f32x4.splat (local.get $c1)))
    (local.set $C2 (f32x4.splat (local.get $c2)))
    (local.set $EPS (f32x4.splat (local.get $eps)))
    (local.set $NLR (f32x4.splat (local.get $nlr)))
    (block $done
      (br_if $done (i32.eqz (local.get $bytes)))
      (loop $next
        (local.set $gv (v128.load align=1 (i32.add (local.get $g) (local.get $i))))
        ;; m' = m*b1 + g*omb1
        (local.set $mv (f32x4.add
          (f32x4.mul (v128.load align=1 (i32.add (local.get $m) (local.get $i))) (local.get $B1))
          (f32x4.mul (local.get $gv) (local.get $OMB1))))
        ;; v' = v*b2 + (g*g)*omb2
        (local.set $vv (f32x4.add
          (f32x4.mul (v128.load align=1 (i32.add (local.get $v) (local.get $i))) (local.get $B2))
          (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (local.get $OMB2))))
        (v128.store align=1 (i32.add (local.get $m) (local.get $i)) (local.get $mv))
        (v128.store align=1 (i32.add (local.get $v) (local.get $i)) (local.get $vv))
        ;; out = ((m'/c1) / (sqrt(v'/c2) + eps)) * nlr + w
        (v128.store align=1 (i32.add (local.get $out) (local.get $i))
          (f32x4.add
            (f32x4.mul
              (f32x4.div
                (f32x4.div (local.get $mv) (local.get $C1))
                (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vv) (local.get $C2))) (local.get $EPS)))
              (local.get $NLR))
            (v128.load align=1 (i32.add (local.get $w) (local.get $i)))))
        (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 16))) (local.get $bytes))))))

  ;; $adam with g' = g + decay*w (the gradient of decay/2 * Σw²) in place of g, in that
  ;; order, as tfjs computes add(grad, mul(w, decay)).
  (func $adamDecay (export "adamDecay")
    (param $out i32) (param $w i32) (param $g i32) (param $m i32) (param $v i32) (param $bytes i32)
    (param $b1 f32) (param $omb1 f32) (param $b2 f32) (param $omb2 f32) (param $c1 f32) (param $c2 f32) (param $eps f32) (param $nlr f32) (param $decay f32)
    (local $i i32)
    (local $B1 v128) (local $OMB1 v128) (local $B2 v128) (local $OMB2 v128) (local $C1 v128) (local $C2 v128) (local $EPS v128) (local $NLR v128) (local $DECAY v128)
    (local $gv v128) (local $mv v128) (local $vv v128)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $OMB1 (f32x4.splat (local.get $omb1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $OMB2 (f32x4.splat (local.get $omb2)))
    (local.set $C1 (f32x4.splat (local.get $c1)))
    (local.set $C2 (f32x4.splat (local.get $c2)))
    (local.set $EPS (f32x4.splat (local.get $eps)))
    (local.set $NLR (f32x4.splat (local.get $nlr)))
    (local.set $DECAY (f32x4.splat (local.get $decay)))
    (block $done
      (br_if $done (i32.eqz (local.get $bytes)))
      (loop $next
        ;; g' = g + w*decay
        (local.set $gv (f32x4.add
          (v128.load align=1 (i32.add (local.get $g) (local.get $i)))
          (f32x4.mul (v128.load align=1 (i32.add (local.get $w) (local.get $i))) (local.get $DECAY))))
        (local.set $mv (f32x4.add
          (f32x4.mul (v128.load align=1 (i32.add (local.get $m) (local.get $i))) (local.get $B1))
          (f32x4.mul (local.get $gv) (local.get $OMB1))))
        (local.set $vv (f32x4.add
          (f32x4.mul (v128.load align=1 (i32.add (local.get $v) (local.get $i))) (local.get $B2))
          (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (local.get $OMB2))))
        (v128.store align=1 (i32.add (local.get $m) (local.get $i)) (local.get $mv))
        (v128.store align=1 (i32.add (local.get $v) (local.get $i)) (local.get $vv))
        (v128.store align=1 (i32.add (local.get $out) (local.get $i))
          (f32x4.add
            (f32x4.mul
              (f32x4.div
                (f32x4.div (local.get $mv) (local.get $C1))
                (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vv) (local.get $C2))) (local.get $EPS)))
              (local.get $NLR))
            (v128.load align=1 (i32.add (local.get $w) (local.get $i)))))
        (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 16))) (local.get $bytes))))))

  ;; Σ x[i]² in double precision over $bytes (a multiple of 16) from byte address $x: each
  ;; group of four floats widened to two f64x2 pairs, squared, added to two accumulators,
  ;; whose lanes are added at the end.
  (func $sumSquares (export "sumSquares") (param $x i32) (param $bytes i32) (result f64)
    (local $j i32) (local $lo v128) (local $hi v128) (local $xv v128) (local $t v128)
    (block $done
      (br_if $done (i32.eqz (local.get $bytes)))
      (loop $next
        (local.set $xv (v128.load align=1 (i32.add (local.get $x) (local.get $j))))
        (local.set $lo (f64x2.add (local.get $lo)
          (f64x2.mul (local.tee $t (f64x2.promote_low_f32x4 (local.get $xv))) (local.get $t))))
        ;; float lanes 2 and 3 moved to 0 and 1, then widened the same way
        (local.set $hi (f64x2.add (local.get $hi)
          (f64x2.mul
            (local.tee $t (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $xv) (local.get $xv))))
            (local.get $t))))
        (br_if $next (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 16))) (local.get $bytes)))))
    (f64.add
      (f64x2.extract_lane 0 (local.tee $lo (f64x2.add (local.get $lo) (local.get $hi))))
      (f64x2.extract_lane 1 (local.get $lo))))
)
`;
