/**
 * Per-kernel profile of one training step exactly as trainLoop runs it (graft's forward,
 * loss, dropout masks and optimizer) on the wasm backend, for both phases.
 * Run: `npx tsx packages/bench/scripts/profile-train.ts [steps]`.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@graft/core';
import {
  SEED_NETWORK,
  VARIABLE_ORDER,
  buildNetwork,
  crossEntropy,
  drawDropoutMasks,
  features,
  gatherBatch,
  headLogits,
  initBackend,
  inputTensor,
  networkVariables,
} from '@graft/model';
import type { NetworkSpec } from '@graft/model';
import { syntheticImages } from '@graft/data';
import { createAdam, sumOfSquares } from '@graft/train';

const steps = Number(process.argv[2] ?? 20);
const BATCH = 100;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

await initBackend('wasm');
const data = syntheticImages({ length: 1000, rows: 28, cols: 28, numClasses: 10, seed: 1 });

for (const phase of ['one', 'two'] as const) {
  const spec: NetworkSpec = { ...SEED_NETWORK, numClasses: phase === 'one' ? 9 : 10 };
  const rng = new Rng(0);
  const model = buildNetwork(spec, rng);
  const vars = networkVariables(model);
  const trained = phase === 'one' ? VARIABLE_ORDER : (['headKernel', 'headBias'] as const);
  const regularised = phase === 'one' ? [vars.convKernel, vars.fc1Kernel, vars.headKernel] : [vars.headKernel];
  const decay = trained.map((n) => (regularised.includes(vars[n]) ? 0.001 / regularised.length : 0));
  const optimizer = createAdam(trained.map((n) => vars[n]), { learningRate: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, { decay });
  let b = 0;
  const step = () => {
    const start = (b++ * BATCH) % (data.length - BATCH);
    const { x, y, size } = gatherBatch(data, [start, start + BATCH]);
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
  for (let i = 0; i < 3; i++) step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  const profile = await tf.profile(step);
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of profile.kernels) {
    const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += k.kernelTimeMs as number;
    e.calls += 1;
    byKernel.set(k.name, e);
  }
  const rows = [...byKernel].sort((p, q) => q[1].ms - p[1].ms);
  const total = rows.reduce((s, [, e]) => s + e.ms, 0);
  console.log(
    `\nphase ${phase} (${optimizer.kind} Adam): median ${median(times).toFixed(1)} ms/step over ${steps} steps ` +
      `(min ${Math.min(...times).toFixed(1)}); profiled step: ${total.toFixed(1)} ms in ${profile.kernels.length} kernels`,
  );
  for (const [name, e] of rows.slice(0, 16)) {
    console.log(`  ${name.padEnd(22)} ${e.ms.toFixed(1).padStart(7)} ms  ${String(e.calls).padStart(3)} calls`);
  }
  optimizer.dispose();
  model.dispose();
}
console.log(`\ntensors alive: ${tf.memory().numTensors}`);
