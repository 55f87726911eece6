/**
 * The three fc1 products of a training step, timed one by one on the wasm backend:
 *
 *   forward  Y  = X · W      [100×4320]·[4320×500]   (phase one: BatchMatMul; phase two: _FusedMatMul + bias + relu)
 *   dX       dX = dY · Wᵀ    [100×500]·[500×4320]    (BatchMatMul, transposeB)
 *   dW       dW = Xᵀ · dY    [4320×100]·[100×500]    (BatchMatMul, transposeA)
 *
 * each ~432 MFLOP. X and dY carry the zeros a training step gives them (dropout and ReLU:
 * X ~`--x-zeros`, dY ~`--dy-zeros`, each row its own pattern), W is a fresh tensor for every
 * call as in training (the fused Adam writes a new one each step, so any packing of W is
 * paid every time). Variants run interleaved (A B A B ...) so a drifting machine moves
 * them alike; it prints the median of each (CPU time of the call) and GFLOP/s (2·m·k·n per call, zeros counted).
 *
 * With relaxed SIMD available (Node 24, or Node 20 run as
 * `node --experimental-wasm-relaxed-simd --import tsx ...`) it adds graft's experimental
 * relaxed_madd kernels as a third variant and prints their largest deviation from the exact ones.
 *
 * Run: `npx tsx packages/wasm-kernels/scripts/bench-gemm.ts [rounds] [--x-zeros 0.5] [--dy-zeros 0.75] [--max-density 1]`
 */
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../src/index.ts';
import { setGemmKernels } from '../src/batch-mat-mul.ts';
import { gemmLimits, relaxedFmaAvailable } from '../src/gemm.ts';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const rounds = Number(args.find((a) => /^\d+$/.test(a)) ?? 15);
const maxDensityArg = flag('--max-density', 1);
const xZeros = flag('--x-zeros', 0.5);
const dyZeros = flag('--dy-zeros', 0.75);

let seed = 12345;
function uniform(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 4294967296;
}
function values(size: number, zeros: number, scale = 1): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = uniform() < zeros ? 0 : (uniform() * 2 - 1) * scale;
  return out;
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

registerWasmTrainingKernels();
gemmLimits.maxDensity = maxDensityArg;
await tf.setBackend('wasm');
await tf.ready();

const [M, K, N] = [100, 4320, 500];
const x = tf.tensor2d(values(M * K, xZeros), [M, K]);
const dy = tf.tensor2d(values(M * N, dyZeros, 0.01), [M, N]);
const bias = tf.tensor1d(values(N, 0, 0.1));
const wValues = values(K * N, 0, 0.1);

// Phase two's frozen W: the same tensor every call (XNNPACK and graft keep its packing).
const frozenW = tf.tensor2d(wValues, [K, N]);
type Product = { name: string; run: (w: tf.Tensor2D) => tf.Tensor };
const products: Product[] = [
  { name: 'forward X·W (BatchMatMul)', run: (w) => tf.matMul(x, w) },
  { name: 'forward X·W + bias, relu (_FusedMatMul)', run: (w) => tf.fused.matMul({ a: x, b: w, bias, activation: 'relu' }) },
  { name: 'forward, frozen W (phase two)', run: () => tf.fused.matMul({ a: x, b: frozenW, bias, activation: 'relu' }) },
  { name: 'dX = dY·Wᵀ', run: (w) => tf.matMul(dy, w, false, true) },
  { name: 'dW = Xᵀ·dY', run: () => tf.matMul(x, dy, true, false) },
];

/** Each variant: a name and what to switch on before its calls. */
const variants: { name: string; select: () => void }[] = [
  { name: 'xnnpack', select: () => setGemmKernels(false) },
  { name: 'graft gemm', select: () => ((gemmLimits.relaxedFma = false), setGemmKernels(true)) },
];
const relaxed = relaxedFmaAvailable(tf.backend() as BackendWasm);
if (relaxed) variants.push({ name: 'graft relaxed FMA', select: () => ((gemmLimits.relaxedFma = true), setGemmKernels(true)) });
console.log(`relaxed SIMD ${relaxed ? 'available: measuring the relaxed_madd variant too' : 'not available in this runtime'}`);

console.log(
  `bench-gemm: ${rounds} interleaved rounds, X zeros ${xZeros}, dY zeros ${dyZeros}, node ${process.version}, ` +
    `load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
);
const flops = 2 * M * K * N;
const results: Record<string, Record<string, number>> = {};
for (const p of products) {
  const times: number[][] = variants.map(() => []);
  // One fresh W per call (training's W is new every step), made outside the timed region.
  const call = (v: number) => {
    variants[v]!.select();
    const w = tf.tensor2d(wValues, [K, N]);
    // CPU time (user + system) of this process: on a shared machine, wall time also counts
    // the time spent waiting for a core.
    const c0 = process.cpuUsage();
    const out = p.run(w);
    out.dataSync();
    const c = process.cpuUsage(c0);
    const t = (c.user + c.system) / 1000;
    tf.dispose([out, w]);
    return t;
  };
  for (let v = 0; v < variants.length; v++) for (let i = 0; i < 2; i++) call(v); // warm-up
  for (let r = 0; r < rounds; r++) for (let v = 0; v < variants.length; v++) times[v]!.push(call(v));
  const row: Record<string, number> = {};
  const parts = variants.map((v, i) => {
    const ms = median(times[i]!);
    row[v.name] = ms;
    return `${v.name} ${ms.toFixed(2)} ms (${(flops / ms / 1e6).toFixed(1)} GFLOP/s)`;
  });
  results[p.name] = row;
  const ratio = row[variants[1]!.name]! / row[variants[0]!.name]!;
  let deviation = '';
  if (relaxed) {
    // Largest |relaxed - exact| relative to the largest |exact|, on one fresh W.
    const w = tf.tensor2d(wValues, [K, N]);
    variants[1]!.select();
    const exact = p.run(w).dataSync();
    variants[2]!.select();
    const fused = p.run(w).dataSync();
    let worst = 0;
    let scale = 0;
    exact.forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - fused[i]!));
      scale = Math.max(scale, Math.abs(v));
    });
    w.dispose();
    deviation = `, FMA ratio ${(row[variants[2]!.name]! / row[variants[0]!.name]!).toFixed(2)}, FMA max deviation ${(worst / scale).toExponential(1)} of max |C|`;
  }
  console.log(`${p.name.padEnd(42)} ${parts.join('  ')}  ratio ${ratio.toFixed(2)}${deviation}`);
}
console.log(`load average after ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
