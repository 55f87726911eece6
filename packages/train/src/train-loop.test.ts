import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@graft/core';
import type { ProgressReporter } from '@graft/core';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { accuracyOn, assignValues, buildNetwork, initBackend, networkVariables, readWeights, trainingLoss } from '@graft/model';
import type { NetworkSpec } from '@graft/model';
import { syntheticImages } from '@graft/data';
import { contiguousPlan, shuffledPlan } from './plans.ts';
import { CHECKPOINT_FILE, trainLoop } from './train-loop.ts';
import type { TrainOptions } from './train-loop.ts';

const tiny: NetworkSpec = { rows: 8, cols: 8, filters: 3, kernelSize: 3, hidden: 16, numClasses: 3, dropoutRate: 0.3 };
const train = syntheticImages({ length: 120, rows: 8, cols: 8, numClasses: 3, seed: 1 });
const validation = syntheticImages({ length: 60, rows: 8, cols: 8, numClasses: 3, seed: 2 });
let dir: string;

beforeAll(async () => {
  await initBackend('cpu');
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'graft-train-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function options(model: tf.LayersModel, overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    model,
    train,
    validation,
    epochs: 3,
    plan: shuffledPlan(train.length, 10, 6),
    rng: new Rng(11),
    learningRate: 1e-2,
    l2: 0.001,
    keepProb: 0.7,
    evalEvery: 2,
    trainable: 'all',
    regularise: ['convKernel', 'fc1Kernel', 'headKernel'],
    ...overrides,
  };
}

describe('trainingLoss', () => {
  it('is mean softmax cross-entropy plus l2 times the mean of sum(w^2)/2', () => {
    const logits = tf.tensor2d([[1, 2, 0.5], [0, -1, 3]]);
    const labels = tf.tensor1d([1, 2], 'int32');
    const w1 = tf.tensor1d([1, 2]);
    const w2 = tf.tensor1d([3]);
    const ce = (row: number[], y: number) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[y]!;
    const expected = (ce([1, 2, 0.5], 1) + ce([0, -1, 3], 2)) / 2 + 0.5 * ((5 / 2 + 9 / 2) / 2);
    expect(trainingLoss(logits, labels, [w1, w2], 0.5).dataSync()[0]).toBeCloseTo(expected, 5);
    tf.dispose([logits, labels, w1, w2]);
  });
});

describe('trainLoop', () => {
  it('learns a separable problem and records the curve every evalEvery batches', async () => {
    const model = buildNetwork(tiny, new Rng(0));
    const vars = networkVariables(model);
    const before = accuracyOn(vars, tiny, validation);
    const updates: Array<Record<string, string | number> | undefined> = [];
    const progress: ProgressReporter = { start() {}, update: (_n, fields) => updates.push(fields), stop() {} };
    const result = await trainLoop(options(model, { epochs: 4, progress }));
    expect(result.steps).toBe(24);
    expect(result.curve.map((p) => [p.epoch, p.batch, p.step])).toEqual(
      [1, 2, 3, 4].flatMap((e) => [2, 4, 6].map((b) => [e, b, (e - 1) * 6 + b])),
    );
    const last = result.curve[result.curve.length - 1]!;
    expect(last.valAccuracy).toBe(accuracyOn(vars, tiny, validation));
    expect(last.valAccuracy).toBeGreaterThan(Math.max(before, 0.9));
    expect(result.msPerStep).toBeGreaterThan(0);
    expect(updates).toHaveLength(24);
    expect(updates[23]).toMatchObject({ epoch: 4, batch: 6, val: expect.any(Number) });
    model.dispose();
  });

  it('is deterministic: the same seed gives bit-identical weights and curve', async () => {
    const run = async (seed: number) => {
      const model = buildNetwork(tiny, new Rng(seed));
      const result = await trainLoop(options(model, { rng: new Rng(seed) }));
      const weights = readWeights(networkVariables(model));
      model.dispose();
      return { weights, curve: result.curve };
    };
    const a = await run(1);
    const b = await run(1);
    const c = await run(2);
    expect(a.weights).toEqual(b.weights);
    expect(a.curve).toEqual(b.curve);
    expect(a.weights.fc1Kernel).not.toEqual(c.weights.fc1Kernel);
  });

  it.each(['all', 'head'] as const)('resumes (%s) from the last epoch checkpoint and ends bit-identical to an uninterrupted run', async (trainable) => {
    const fingerprint = 'test-run';
    // 5 steps per epoch: Adam's running beta2^t differs from pow(beta2, t) in float32 at
    // t = 5, so this also checks that the optimizer's beta powers are restored exactly.
    const plan = shuffledPlan(train.length, 10, 5);
    const uninterrupted = buildNetwork(tiny, new Rng(4));
    const full = await trainLoop(options(uninterrupted, { trainable, plan, rng: new Rng(4), checkpoint: { dir: join(dir, 'a'), resume: true, fingerprint } }));

    const crashed = buildNetwork(tiny, new Rng(4));
    await expect(
      trainLoop(
        options(crashed, {
          trainable,
          plan,
          rng: new Rng(4),
          checkpoint: { dir: join(dir, 'b'), resume: true, fingerprint },
          onEpochEnd: (epoch) => {
            if (epoch === 1) throw new Error('simulated crash');
          },
        }),
      ),
    ).rejects.toThrow('simulated crash');
    crashed.dispose();

    // A fresh process would rebuild the model from the seed; the checkpoint overrides it.
    const resumedModel = buildNetwork(tiny, new Rng(4));
    const resumed = await trainLoop(options(resumedModel, { trainable, plan, rng: new Rng(4), checkpoint: { dir: join(dir, 'b'), resume: true, fingerprint } }));
    expect(resumed.resumedAfterEpoch).toBe(1);
    expect(resumed.steps).toBe(full.steps);
    expect(resumed.curve).toEqual(full.curve);
    expect(readWeights(networkVariables(resumedModel))).toEqual(readWeights(networkVariables(uninterrupted)));
    uninterrupted.dispose();
    resumedModel.dispose();
  });

  it('ignores a checkpoint when resume is off, of another run, or damaged', async () => {
    const ckptDir = join(dir, 'c');
    const first = buildNetwork(tiny, new Rng(4));
    await trainLoop(options(first, { epochs: 1, checkpoint: { dir: ckptDir, resume: true, fingerprint: 'x' } }));
    first.dispose();
    const warnings: string[] = [];
    const logger = { info() {}, warn: (_o: object, msg?: string) => warnings.push(msg ?? '') };
    for (const [resume, fingerprint] of [[false, 'x'], [true, 'other']] as const) {
      const model = buildNetwork(tiny, new Rng(4));
      const result = await trainLoop(options(model, { epochs: 1, logger, checkpoint: { dir: ckptDir, resume, fingerprint } }));
      expect(result.resumedAfterEpoch).toBeNull();
      model.dispose();
    }
    await writeFile(join(ckptDir, CHECKPOINT_FILE), 'garbage');
    const model = buildNetwork(tiny, new Rng(4));
    expect((await trainLoop(options(model, { epochs: 1, logger, checkpoint: { dir: ckptDir, resume: true, fingerprint: 'x' } }))).resumedAfterEpoch).toBeNull();
    model.dispose();
    expect(warnings).toEqual([expect.stringContaining('different run'), expect.stringContaining('unusable checkpoint')]);
  });

  it('trains only the head when asked, leaving every base weight bit-identical', async () => {
    const model = buildNetwork(tiny, new Rng(7));
    const before = readWeights(networkVariables(model));
    await trainLoop(options(model, { trainable: 'head', regularise: ['headKernel'] }));
    const after = readWeights(networkVariables(model));
    for (const name of ['convKernel', 'convBias', 'fc1Kernel', 'fc1Bias'] as const) expect(after[name]).toEqual(before[name]);
    expect(after.headKernel).not.toEqual(before.headKernel);
    expect(after.headBias).not.toEqual(before.headBias);
    model.dispose();
  });

  it('leaks no tensors, however many steps run', async () => {
    const model = buildNetwork(tiny, new Rng(7));
    const counts: number[] = [];
    for (const [trainable, epochs] of [['all', 1], ['all', 3], ['head', 1], ['head', 3]] as const) {
      const start = tf.memory().numTensors;
      await trainLoop(options(model, { trainable, epochs, checkpoint: { dir: join(dir, `${trainable}${epochs}`), resume: false, fingerprint: 'f' } }));
      counts.push(tf.memory().numTensors - start);
    }
    expect(counts).toEqual([0, 0, 0, 0]);
    model.dispose();
  });

  it('stops with NON_FINITE_LOSS naming the epoch, batch and step', async () => {
    const model = buildNetwork(tiny, new Rng(7));
    const vars = networkVariables(model);
    assignValues(vars.headBias, new Float32Array([NaN, 0, 0]));
    const start = tf.memory().numTensors;
    await expect(trainLoop(options(model, { plan: contiguousPlan(train.length, 10) }))).rejects.toMatchObject({
      code: 'NON_FINITE_LOSS',
      message: expect.stringMatching(/NaN at epoch 1, batch 1 \(step 1\)/),
    });
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  });
});
