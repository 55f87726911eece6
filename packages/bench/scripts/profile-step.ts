/**
 * Where a training step's time goes, for one phase-one and one phase-two step exactly as
 * trainLoop runs them (graft's forward, loss, dropout masks, fused Adam) on the wasm backend:
 *
 *   - wall time per step (median of N, unprofiled);
 *   - kernels: tf.profile() of one step, time and calls per kernel, bytes of kernel outputs;
 *   - JS between kernels: the unprofiled wall time minus the kernels' time;
 *   - a V8 CPU profile of N steps (node:inspector), self time by category: wasm code, GC,
 *     tfjs engine JS, graft JS, other;
 *   - garbage collections during the N steps (PerformanceObserver 'gc': count, pause time).
 *
 * Run: `npx tsx packages/bench/scripts/profile-step.ts [steps]` (default 30). Figures are only
 * as quiet as the machine: note the load average it prints.
 */
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import type { PerformanceEntry } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import {
  convPool,
  crossEntropy,
  drawDropoutMasks,
  fc1Features,
  features,
  gatherBatch,
  headLogits,
  initBackend,
  inputTensor,
} from '@graft/model';
import type { DropoutMasks } from '@graft/model';
import { syntheticImages } from '@graft/data';
import { PooledFeatureCache, baseCacheSettings, sumOfSquares } from '@graft/train';
import { phaseSetup } from './phase-setup.ts';

const steps = Number(process.argv[2] ?? 30);
const freshBuffers = process.env.PROFILE_FRESH_BUFFERS === '1';
const BATCH = 100;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  hitCount?: number;
}

/** Self time by category from a V8 CPU profile. */
function categorise(profile: { nodes: CpuProfileNode[]; startTime: number; endTime: number; samples?: number[] }): Record<string, number> {
  const totalHits = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0);
  const ms = (profile.endTime - profile.startTime) / 1000;
  const out: Record<string, number> = {};
  const top = new Map<string, number>();
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName: f, url } = n.callFrame;
    let cat: string;
    if (f === '(garbage collector)') cat = 'GC';
    else if (f === '(idle)' || f === '(program)') cat = f;
    else if (url.startsWith('wasm://') || /^(wasm-function|\$?js-to-wasm|\$?wasm-to-js)/.test(f)) cat = 'wasm code';
    else if (url.includes('@tensorflow')) cat = 'tfjs JS (engine, kernel glue)';
    else if (url.includes('/packages/')) cat = 'graft JS (batch, masks, optimizer glue)';
    else cat = 'other JS / node';
    out[cat] = (out[cat] ?? 0) + (hits / totalHits) * ms;
    if (cat !== 'wasm code' && cat !== 'GC' && cat !== '(idle)') {
      const key = `${f || '(anonymous)'} ${url.split('/').slice(-2).join('/')}`;
      top.set(key, (top.get(key) ?? 0) + (hits / totalHits) * ms);
    }
  }
  const topJs = [...top].sort((a, b) => b[1] - a[1]).slice(0, 8);
  for (const [k, v] of topJs) out[`  top JS: ${k}`] = v;
  return out;
}

await initBackend('wasm');
const data = syntheticImages({ length: 2000, rows: 28, cols: 28, numClasses: 10, seed: 1 });
console.log(`profile-step: ${steps} steps per phase, batch ${BATCH}, wasm, node ${process.version}, ${freshBuffers ? 'fresh' : 'reused'} step buffers, frozen base ${baseCacheSettings().enabled ? 'cached' : 'recomputed'}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

for (const phase of ['one', 'two'] as const) {
  const { spec, rng, model, vars, regularised, optimizer } = phaseSetup(phase);
  let b = 0;
  // Phase two's frozen base as trainLoop keeps it (GRAFT_BASE_CACHE=off: recomputed every step).
  const cache = phase === 'two' && baseCacheSettings().enabled ? new PooledFeatureCache(spec, data, baseCacheSettings().maxBytes) : null;
  const buffers: { x?: Float32Array; masks?: DropoutMasks | null } = {};
  // trainLoop's step body (packages/train/src/train-loop.ts), without its bookkeeping.
  // PROFILE_FRESH_BUFFERS=1: new batch and mask arrays every step, as before trainLoop reused them.
  const step = () => {
    const start = (b++ * BATCH) % (data.length - BATCH);
    const batch = [start, start + BATCH] as const;
    const { x, y, size } = gatherBatch(data, batch, freshBuffers ? undefined : buffers.x);
    const masks = drawDropoutMasks(rng, size, spec, 0.7, freshBuffers ? undefined : buffers.masks);
    buffers.x = x;
    buffers.masks = masks;
    const yT = tf.tensor1d(y, 'int32');
    sumOfSquares(regularised);
    const lossT = tf.tidy(() => {
      if (phase === 'two') {
        const pooled = cache ? cache.pooled(vars, batch, x) : convPool(vars, inputTensor(x, size, spec));
        const feats = fc1Features(vars, pooled, spec, masks);
        return optimizer.minimize(() => crossEntropy(headLogits(vars, feats), yT));
      }
      const xT = inputTensor(x, size, spec);
      return optimizer.minimize(() => crossEntropy(headLogits(vars, features(vars, xT, spec, masks)), yT));
    });
    lossT.dataSync();
    tf.dispose([lossT, yT]);
  };
  // Warm-up: one pass over the data, so phase two's cache holds every image as in epochs 2-8.
  for (let i = 0; i < Math.max(5, Math.ceil(data.length / BATCH)); i++) step();

  // Wall time and GC over N plain steps.
  const gcs: Array<{ kind: number; ms: number }> = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ kind: (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0, ms: e.duration });
  });
  observer.observe({ entryTypes: ['gc'] });
  const heapBefore = process.memoryUsage();
  const cpuBefore = process.cpuUsage();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  const cpuUsed = process.cpuUsage(cpuBefore);
  const cpuMs = (cpuUsed.user + cpuUsed.system) / 1000 / steps;
  await new Promise((r) => setTimeout(r, 50));
  observer.disconnect();
  const wall = median(times);

  // Kernels of one step.
  // Several profiled steps, each kernel's median time: one step on a busy machine can be
  // descheduled in the middle of any kernel.
  const tensorsBefore = tf.memory().numTensors;
  const PROFILED = 5;
  const perStep: Array<Map<string, number>> = [];
  let profile!: Awaited<ReturnType<typeof tf.profile>>;
  for (let p = 0; p < PROFILED; p++) {
    profile = await tf.profile(step);
    const ms = new Map<string, number>();
    for (const k of profile.kernels) if (!k.name.endsWith('__op')) ms.set(k.name, (ms.get(k.name) ?? 0) + (k.kernelTimeMs as number));
    perStep.push(ms);
  }
  const byKernel = new Map<string, { ms: number; calls: number; bytes: number }>();
  let outBytes = 0;
  for (const k of profile.kernels) {
    // 'xxx__op' entries are ops built from other kernels (custom gradients): their time is
    // their inner kernels', listed separately, so they are left out of the sums.
    if (k.name.endsWith('__op')) continue;
    const e = byKernel.get(k.name) ?? { ms: 0, calls: 0, bytes: 0 };
    const bytes = k.outputShapes.reduce((s, shape) => s + 4 * (shape ?? []).reduce((p, d) => p * d, 1), 0);
    e.calls += 1;
    e.bytes += bytes;
    outBytes += bytes;
    byKernel.set(k.name, e);
  }
  for (const [name, e] of byKernel) e.ms = median(perStep.map((m) => m.get(name) ?? 0));
  const kernelMs = [...byKernel.values()].reduce((s, e) => s + e.ms, 0);

  // CPU profile of N steps.
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  for (let i = 0; i < steps; i++) step();
  const { profile: cpu } = (await session.post('Profiler.stop')) as unknown as { profile: Parameters<typeof categorise>[0] };
  session.disconnect();
  const cats = categorise(cpu);

  const launches = profile.kernels.filter((k) => !k.name.endsWith('__op')).length;
  console.log(
    `\nphase ${phase}: median ${wall.toFixed(1)} ms/step wall (min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)}), ` +
      `${cpuMs.toFixed(1)} ms/step CPU time, over ${steps} steps`,
  );
  console.log(`  kernels: ${launches} launches, ${kernelMs.toFixed(1)} ms in kernels (sum of per-kernel medians over ${PROFILED} profiled steps)`);
  console.log(`  allocations: ${(outBytes / 2 ** 20).toFixed(1)} MB of kernel outputs a step (profile: newTensors ${profile.newTensors}, peak ${(profile.peakBytes / 2 ** 20).toFixed(1)} MB), tensors leaked ${tf.memory().numTensors - tensorsBefore}`);
  const minor = gcs.filter((g) => g.kind === 1);
  const major = gcs.filter((g) => g.kind !== 1);
  console.log(
    `  GC over ${steps} steps: ${minor.length} minor (${minor.reduce((s, g) => s + g.ms, 0).toFixed(1)} ms), ${major.length} other (${major.reduce((s, g) => s + g.ms, 0).toFixed(1)} ms); ` +
      `JS heap ${(heapBefore.heapUsed / 2 ** 20).toFixed(0)} -> ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MB, external ${(process.memoryUsage().external / 2 ** 20).toFixed(0)} MB`,
  );
  console.log('  kernel                     ms   calls   MB out');
  for (const [name, e] of [...byKernel].sort((p, q) => q[1].ms - p[1].ms).slice(0, 14)) {
    console.log(`  ${name.padEnd(22)} ${e.ms.toFixed(1).padStart(7)} ${String(e.calls).padStart(6)} ${(e.bytes / 2 ** 20).toFixed(2).padStart(8)}`);
  }
  console.log(`  CPU profile, ${steps} steps, self time per step:`);
  for (const [cat, msTotal] of Object.entries(cats).sort((p, q) => (p[0].startsWith('  ') === q[0].startsWith('  ') ? q[1] - p[1] : p[0].startsWith('  ') ? 1 : -1))) {
    console.log(`    ${cat.padEnd(60)} ${(msTotal / steps).toFixed(2).padStart(7)} ms`);
  }
  optimizer.dispose();
  model.dispose();
}
