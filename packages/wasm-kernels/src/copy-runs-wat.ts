/**
 * Strided copies of float runs on the tfjs wasm backend's memory, in WebAssembly text: the
 * conv filter gradient's patch matrix is 60,000 runs of 24 floats a step (one per tap,
 * image and output row), which cost more in copyWithin calls from JavaScript than in copying.
 */
export const COPY_RUNS_WAT = String.raw`;; Strided run copies (imported memory).
(module
  (import "env" "memory" (memory 0))

  ;; For i = 0 .. count-1: copy $run floats from $src + i*$srcStride to $dst + i*$dstStride
  ;; (byte addresses and strides; runs do not overlap). Four floats at a time, then singles.
  (func $copyRuns (export "copyRuns")
    (param $dst i32) (param $src i32) (param $count i32) (param $run i32) (param $dstStride i32) (param $srcStride i32)
    (local $i i32) (local $d i32) (local $s i32) (local $end i32) (local $vecEnd i32)
    (block $done
      (br_if $done (i32.or (i32.eqz (local.get $count)) (i32.eqz (local.get $run))))
      (loop $next
        (local.set $d (local.get $dst))
        (local.set $s (local.get $src))
        (local.set $end (i32.add (local.get $s) (i32.shl (local.get $run) (i32.const 2))))
        (local.set $vecEnd (i32.sub (local.get $end) (i32.const 12)))
        (block $vecsDone
          (loop $vec
            (br_if $vecsDone (i32.ge_u (local.get $s) (local.get $vecEnd)))
            (v128.store align=4 (local.get $d) (v128.load align=4 (local.get $s)))
            (local.set $s (i32.add (local.get $s) (i32.const 16)))
            (local.set $d (i32.add (local.get $d) (i32.const 16)))
            (br $vec)))
        (block $singlesDone
          (loop $single
            (br_if $singlesDone (i32.ge_u (local.get $s) (local.get $end)))
            (f32.store (local.get $d) (f32.load (local.get $s)))
            (local.set $s (i32.add (local.get $s) (i32.const 4)))
            (local.set $d (i32.add (local.get $d) (i32.const 4)))
            (br $single)))
        (local.set $dst (i32.add (local.get $dst) (local.get $dstStride)))
        (local.set $src (i32.add (local.get $src) (local.get $srcStride)))
        (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $count))))))
)
`;
