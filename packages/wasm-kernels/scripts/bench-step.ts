/**
 * Training-step benchmark of the DESIGN.md §1 network on the tfjs wasm backend, before and
 * after graft's kernels. Run: `npx tsx packages/wasm-kernels/scripts/bench-step.ts [steps]`.
 *
 * "before" is the stock backend plus only the missing Conv2DBackpropFilter (without it the
 * conv layer cannot train at all); "after" adds the BatchMatMul/_FusedMatMul wrappers.
 * Both run in one process on the same variables, one after the other; "after" once with
 * tf.train.adam and once with graft's fused Adam update.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerKernel } from '@tensorflow/tfjs-core';
import { conv2DBackpropFilterConfig } from '../src/conv2d-backprop-filter.ts';
import { FusedAdam, registerWasmTrainingKernels } from '../src/index.ts';

/** Both optimizers measured here, seen as the one call a step makes. */
type Minimizer = { minimize(loss: () => tf.Scalar): tf.Scalar };

const BATCH = 100;
const CLASSES = 9;
const steps = Number(process.argv[2] ?? 10);
const warmup = 3;

function seeded(size: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(size);
  let s = seed;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296) * scale;
  }
  return out;
}

type Net = { vars: tf.Variable[]; w1: tf.Variable; w3: tf.Variable; w4: tf.Variable };

function buildNet(): Net {
  const kernel = (shape: number[]) => tf.variable(tf.truncatedNormal(shape, 0, 0.1, 'float32', 1));
  const bias = (n: number) => tf.variable(tf.fill([n], 0.1));
  const w1 = kernel([5, 5, 1, 30]);
  const w3 = kernel([12 * 12 * 30, 500]);
  const w4 = kernel([500, CLASSES]);
  return { vars: [w1, bias(30), w3, bias(500), w4, bias(CLASSES)], w1, w3, w4 };
}

function loss(net: Net, x: tf.Tensor4D, y: tf.Tensor2D): tf.Scalar {
  const [w1, b1, w3, b3, w4, b4] = net.vars as unknown as [tf.Tensor4D, tf.Tensor1D, tf.Tensor2D, tf.Tensor1D, tf.Tensor2D, tf.Tensor1D];
  const conv = tf.relu(tf.add(tf.conv2d(x, w1, 1, 'valid'), b1)) as tf.Tensor4D;
  const pool = tf.dropout(tf.maxPool(conv, 2, 2, 'same'), 0.3);
  const fc = tf.dropout(tf.relu(tf.add(tf.matMul(tf.reshape(pool, [BATCH, 4320]), w3), b3)), 0.3);
  const logits = tf.add(tf.matMul(fc as tf.Tensor2D, w4), b4);
  const ce = tf.losses.softmaxCrossEntropy(y, logits);
  const l2 = (w: tf.Tensor) => tf.div(tf.sum(tf.square(w)), 2);
  return tf.add(ce, tf.mul(0.001, tf.div(tf.addN([l2(w1), l2(w3), l2(w4)]), 3))) as tf.Scalar;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function measure(label: string, net: Net, optimizer: Minimizer, x: tf.Tensor4D, y: tf.Tensor2D): Promise<void> {
  const step = () => {
    const cost = optimizer.minimize(() => loss(net, x, y));
    cost.dataSync();
    cost.dispose();
  };
  for (let i = 0; i < warmup; i++) step();
  const times: number[] = [];
  // CPU time too: on a shared machine wall time includes waiting for a core.
  const cpuTimes: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    step();
    const c = process.cpuUsage(c0);
    cpuTimes.push((c.user + c.system) / 1000);
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
  const rows = [...byKernel].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((s, [, e]) => s + e.ms, 0);
  console.log(`\n${label}: median ${median(times).toFixed(1)} ms/step over ${steps} steps ` +
    `(min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)}; ` +
    `CPU time median ${median(cpuTimes).toFixed(1)}); ` +
    `profiled step: ${total.toFixed(1)} ms in ${profile.kernels.length} kernels`);
  for (const [name, e] of rows.slice(0, 12)) {
    console.log(`  ${name.padEnd(22)} ${e.ms.toFixed(1).padStart(7)} ms  ${String(e.calls).padStart(3)} calls`);
  }
}

await tf.setBackend('wasm');
await tf.ready();
console.log(`tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}, batch ${BATCH}, ` +
  `SIMD ${String(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))}, threads ${String(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'))}`);

const x = tf.tensor4d(seeded(BATCH * 28 * 28, 1, 1), [BATCH, 28, 28, 1]);
const y = tf.oneHot(tf.tensor1d(Array.from({ length: BATCH }, (_, i) => i % CLASSES), 'int32'), CLASSES) as tf.Tensor2D;
const net = buildNet();
const adamConfig = { learningRate: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
const adam = tf.train.adam(adamConfig.learningRate, adamConfig.beta1, adamConfig.beta2, adamConfig.epsilon);
const optimizer: Minimizer = { minimize: (loss) => adam.minimize(loss, true, net.vars)! };

registerKernel(conv2DBackpropFilterConfig());
await measure('before (stock wasm + Conv2DBackpropFilter only)', net, optimizer, x, y);
registerWasmTrainingKernels();
await measure('after (all graft wasm kernels, tf.train.adam)', net, optimizer, x, y);
const fused = new FusedAdam(net.vars, adamConfig, net.vars.map(() => 0), true);
await measure('after (all graft wasm kernels, fused Adam)', net, fused, x, y);
adam.dispose();
fused.dispose();
console.log(`\ntensors alive: ${tf.memory().numTensors}`);
