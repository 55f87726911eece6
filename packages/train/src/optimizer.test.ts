import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@graft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildNetwork, initBackend, networkVariables, readWeights } from '@graft/model';
import type { NetworkSpec } from '@graft/model';
import { syntheticImages } from '@graft/data';
import { createAdam, sumOfSquares } from './optimizer.ts';
import type { AdamConfig } from './optimizer.ts';
import { shuffledPlan } from './plans.ts';
import { trainLoop } from './train-loop.ts';
import type { TrainOptions } from './train-loop.ts';

/*
 * The fused Adam update (wasm) against tf.train.adam. Both round every operation to
 * float32 in the same order, so they should agree to the last bit; the stated tolerance
 * leaves room for a backend whose elementwise kernels round differently:
 * max |fused − tfjs| ≤ 1e-6 × max(1, max |tfjs|) after every step.
 */
const TOLERANCE = 1e-6;
const SEED_CONFIG: AdamConfig = { learningRate: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
// A large learning rate so every step moves the weights visibly (1e-4 would too, just less).
const FAST_CONFIG: AdamConfig = { ...SEED_CONFIG, learningRate: 0.05 };

function values(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/**
 * A small regression problem: w [6,5], b [5], data [10,6] -> targets [10,5]. Sizes 30 and 5
 * are not multiples of 4, so the SIMD update's scalar tail runs too.
 */
function problem() {
  const [w, b] = tf.tidy(() => [tf.variable(tf.tensor2d(values(30, 1), [6, 5])), tf.variable(tf.tensor1d(values(5, 2)))]);
  const x = tf.tensor2d(values(60, 3), [10, 6]);
  const y = tf.tensor2d(values(50, 4), [10, 5]);
  const loss = () => tf.tidy(() => tf.add(tf.mean(tf.square(tf.sub(tf.tanh(tf.add(tf.matMul(x, w), b)), y))), tf.mul(0.01, tf.sum(tf.square(w)))) as tf.Scalar);
  const dispose = () => tf.dispose([w, b, x, y]);
  return { vars: [w, b], loss, dispose };
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

const read = (vars: tf.Variable[]) => vars.map((v) => v.dataSync().slice() as Float32Array);

function step(optimizer: ReturnType<typeof createAdam>, loss: () => tf.Scalar): number {
  const l = optimizer.minimize(loss);
  const value = l.dataSync()[0]!;
  l.dispose();
  return value;
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('fused Adam (wasm)', () => {
  it.each([
    ['the seed learning rate', SEED_CONFIG, true, undefined],
    ['a large learning rate', FAST_CONFIG, true, undefined],
    ['a large learning rate, without SIMD', FAST_CONFIG, false, undefined],
    ['L2 decay on the kernel', FAST_CONFIG, true, [0.3, 0]],
    ['L2 decay on the kernel, without SIMD', FAST_CONFIG, false, [0.3, 0]],
  ])('matches tf.train.adam step by step with %s', (_label, config, simd, decay) => {
    const a = problem();
    const b = problem();
    const fused = createAdam(a.vars, config, { fused: true, simd, ...(decay ? { decay } : {}) });
    const reference = createAdam(b.vars, config, { fused: false, ...(decay ? { decay } : {}) });
    expect([fused.kind, fused.vectorised, reference.kind]).toEqual(['fused', simd, 'tfjs']);
    const start = read(a.vars);
    let exact = true;
    for (let s = 0; s < 8; s++) {
      expect(step(fused, a.loss)).toBeCloseTo(step(reference, b.loss), 5);
      const [got, want] = [read(a.vars), read(b.vars)];
      for (let i = 0; i < got.length; i++) {
        expect(maxRelDiff(got[i]!, want[i]!)).toBeLessThanOrEqual(TOLERANCE);
        exact &&= got[i]!.every((x, j) => Object.is(x, want[i]![j]));
      }
      const [fs, rs] = [fused.getState(), reference.getState()];
      expect([fs.iterations, fs.accBeta1, fs.accBeta2]).toEqual([rs.iterations, rs.accBeta1, rs.accBeta2]);
      for (let i = 0; i < fs.m.length; i++) {
        expect(maxRelDiff(fs.m[i]!, rs.m[i]!)).toBeLessThanOrEqual(TOLERANCE);
        expect(maxRelDiff(fs.v[i]!, rs.v[i]!)).toBeLessThanOrEqual(TOLERANCE);
      }
    }
    // Same arithmetic in the same float32 order: on wasm the two agree exactly.
    expect(exact).toBe(true);
    expect(maxRelDiff(read(a.vars)[0]!, start[0]!)).toBeGreaterThan(config.learningRate / 2);
    fused.dispose();
    reference.dispose();
    a.dispose();
    b.dispose();
  });

  it('with decay c, trains as if c/2 * Σw² were part of the loss', () => {
    const a = problem();
    const b = problem();
    const c = 0.3;
    const decayed = createAdam(a.vars, FAST_CONFIG, { decay: [c, 0] });
    const inLoss = createAdam(b.vars, FAST_CONFIG, { fused: false });
    const withL2 = () => tf.tidy(() => tf.add(b.loss(), tf.mul(c / 2, tf.sum(tf.square(b.vars[0]!)))) as tf.Scalar);
    for (let s = 0; s < 6; s++) {
      step(decayed, a.loss);
      step(inLoss, withL2);
    }
    const [got, want] = [read(a.vars), read(b.vars)];
    for (let i = 0; i < got.length; i++) expect(maxRelDiff(got[i]!, want[i]!)).toBeLessThanOrEqual(1e-5);
    // ...and differs from training without it.
    const plain = problem();
    const none = createAdam(plain.vars, FAST_CONFIG);
    for (let s = 0; s < 6; s++) step(none, plain.loss);
    expect(maxRelDiff(read(plain.vars)[0]!, want[0]!)).toBeGreaterThan(1e-3);
    [decayed, inLoss, none].forEach((o) => o.dispose());
    [a, b, plain].forEach((p) => p.dispose());
  });

  it('sums squares like tfjs, SIMD body and scalar tail alike', () => {
    const ts = [tf.tensor1d(values(1003, 9)), tf.tensor1d(values(3, 10)), tf.tensor1d([])];
    const want = tf.tidy(() => tf.addN(ts.map((t) => tf.sum(tf.square(t)))).dataSync()[0]!);
    expect(sumOfSquares(ts)).toBeCloseTo(want, 3);
    expect(sumOfSquares([ts[1]!])).toBeCloseTo(values(3, 10).reduce((s, x) => s + x * x, 0), 6);
    tf.dispose(ts);
  });

  it('leaks no tensors and leaves a tensor sharing a variable buffer untouched', () => {
    const p = problem();
    const optimizer = createAdam(p.vars, FAST_CONFIG, { fused: true });
    const before = tf.memory().numTensors;
    // tf.clone shares the buffer on wasm (graft's Identity kernel): writing the update in
    // place would change the clone too.
    const snapshot = tf.clone(p.vars[0]!);
    const expected = snapshot.dataSync().slice();
    for (let s = 0; s < 3; s++) step(optimizer, p.loss);
    expect(snapshot.dataSync()).toEqual(expected);
    expect(p.vars[0]!.dataSync()).not.toEqual(expected);
    snapshot.dispose();
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    p.dispose();
  });

  it.each([true, false])('resumes bit-identically from its state (fused: %s)', (fused) => {
    const a = problem();
    const b = problem();
    const first = createAdam(a.vars, FAST_CONFIG, { fused });
    for (let s = 0; s < 3; s++) step(first, a.loss);
    const saved = first.getState();
    const weights = read(a.vars);
    for (let s = 0; s < 4; s++) step(first, a.loss);

    tf.tidy(() => b.vars.forEach((v: tf.Variable, i) => v.assign(tf.tensor(weights[i]!, v.shape))));
    const second = createAdam(b.vars, FAST_CONFIG, { fused });
    const before = tf.memory().numTensors;
    second.setState(saved);
    expect(tf.memory().numTensors - before).toBe(fused ? 0 : 4); // tfjs: new m and v variables (fused: written in place)
    for (let s = 0; s < 4; s++) step(second, b.loss);
    expect(read(b.vars)).toEqual(read(a.vars));
    expect(second.getState()).toEqual(first.getState());
    expect(() => second.setState({ ...saved, m: saved.m.slice(1) })).toThrow(/does not fit/);
    first.dispose();
    second.dispose();
    a.dispose();
    b.dispose();
  });

  it('hands its state to tf.train.adam and back, continuing exactly as it would have', () => {
    for (const [from, to] of [[true, false], [false, true]]) {
      const a = problem();
      const b = problem();
      const first = createAdam(a.vars, FAST_CONFIG, { fused: from });
      for (let s = 0; s < 3; s++) step(first, a.loss);
      tf.tidy(() => b.vars.forEach((v: tf.Variable, i) => v.assign(a.vars[i]!.clone())));
      const second = createAdam(b.vars, FAST_CONFIG, { fused: to });
      second.setState(first.getState());
      for (let s = 0; s < 3; s++) expect(step(second, b.loss)).toBe(step(first, a.loss));
      expect(read(b.vars)).toEqual(read(a.vars));
      first.dispose();
      second.dispose();
      a.dispose();
      b.dispose();
    }
  });

  it('refuses the fused update on another backend', async () => {
    await tf.setBackend('cpu');
    try {
      const v = tf.variable(tf.zeros([2]));
      expect(() => createAdam([v], SEED_CONFIG, { fused: true })).toThrow(/needs the wasm backend/);
      expect(createAdam([v], SEED_CONFIG).kind).toBe('tfjs');
      v.dispose();
    } finally {
      await tf.setBackend('wasm');
    }
  });
});

describe('trainLoop on wasm (fused Adam)', () => {
  const tiny: NetworkSpec = { rows: 8, cols: 8, filters: 3, kernelSize: 3, hidden: 16, numClasses: 3, dropoutRate: 0.3 };
  const train = syntheticImages({ length: 100, rows: 8, cols: 8, numClasses: 3, seed: 1 });
  const validation = syntheticImages({ length: 30, rows: 8, cols: 8, numClasses: 3, seed: 2 });
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'graft-adam-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const options = (model: tf.LayersModel, overrides: Partial<TrainOptions>): TrainOptions => ({
    model,
    train,
    validation,
    epochs: 2,
    // 5 steps per epoch: float32 beta2^5 differs from pow(beta2, 5), so resuming also
    // checks that the running beta powers are restored, not recomputed.
    plan: shuffledPlan(train.length, 10, 5),
    rng: new Rng(4),
    learningRate: 1e-2,
    l2: 0.001,
    keepProb: 0.7,
    evalEvery: 5,
    trainable: 'all',
    regularise: ['convKernel', 'fc1Kernel', 'headKernel'],
    ...overrides,
  });

  it.each(['all', 'head'] as const)('resumes (%s) bit-identical to an uninterrupted run, leaking no tensors', async (trainable) => {
    const start = tf.memory().numTensors;
    const uninterrupted = buildNetwork(tiny, new Rng(4));
    const full = await trainLoop(options(uninterrupted, { trainable, checkpoint: { dir: join(dir, `${trainable}-a`), resume: true, fingerprint: 'f' } }));
    const crashed = buildNetwork(tiny, new Rng(4));
    const crash = (epoch: number) => {
      if (epoch === 1) throw new Error('simulated crash');
    };
    const checkpoint = { dir: join(dir, `${trainable}-b`), resume: true, fingerprint: 'f' };
    await expect(trainLoop(options(crashed, { trainable, checkpoint, onEpochEnd: crash }))).rejects.toThrow('simulated crash');
    crashed.dispose();
    const resumedModel = buildNetwork(tiny, new Rng(4));
    const resumed = await trainLoop(options(resumedModel, { trainable, checkpoint }));
    expect(resumed.resumedAfterEpoch).toBe(1);
    expect(resumed.curve).toEqual(full.curve);
    expect(readWeights(networkVariables(resumedModel))).toEqual(readWeights(networkVariables(uninterrupted)));
    uninterrupted.dispose();
    resumedModel.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});
