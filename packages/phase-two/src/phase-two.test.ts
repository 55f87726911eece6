import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InputArtifact } from '@graft/core';
import { MODEL_DIR, listModelFiles, loadModel, networkVariables, readWeights } from '@graft/model';
import { BASE_CACHE_ENV, BASE_CACHE_MB_ENV, METRICS_FILE } from '@graft/train';
import { stageContext, syntheticSplit, trainedModelArtifact, widenedHeadArtifact } from '@graft/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { phaseTwoStage } from './phase-two.ts';
import type { PhaseTwoMetricsFile } from './phase-two.ts';

let root: string;
let split: InputArtifact;
let phaseOne: InputArtifact;
let transplant: InputArtifact;
const quick = { epochs: 2, batchesPerEpoch: 5, batchSize: 20, evalEvery: 5, learningRate: 1e-2 };
const BASE = ['convKernel', 'convBias', 'fc1Kernel', 'fc1Bias'] as const;

async function weightsOf(dir: string) {
  const model = await loadModel(join(dir, MODEL_DIR), await listModelFiles(join(dir, MODEL_DIR)));
  const weights = readWeights(networkVariables(model));
  model.dispose();
  return weights;
}

async function run(params: Record<string, unknown>, model = transplant) {
  const ctx = await stageContext(root, phaseTwoStage, params, { model, data: split });
  const result = await phaseTwoStage.run(ctx);
  const metrics = JSON.parse(await readFile(join(ctx.outDir, METRICS_FILE), 'utf8')) as PhaseTwoMetricsFile;
  return { ctx, result, metrics, weights: await weightsOf(ctx.outDir) };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'graft-phase-two-'));
  split = await syntheticSplit(root, { numLabels: 4, holdout: [3] });
  // A base trained on the three phase-one classes under a fresh four-unit head: what phase
  // two gets from the transplant stage, made without running other stages.
  phaseOne = await trainedModelArtifact(root, split, { epochs: 1, batchSize: 20, learningRate: 1e-3 });
  transplant = await widenedHeadArtifact(root, phaseOne, 4);
});
afterAll(() => rm(root, { recursive: true, force: true }));
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('phaseTwoStage', () => {
  it('trains only the head: every base weight stays bit-identical to the transplant', async () => {
    const before = await weightsOf(transplant.path);
    const { result, metrics, weights } = await run(quick);
    for (const name of BASE) expect(weights[name]).toEqual(before[name]);
    expect(weights.headKernel).not.toEqual(before.headKernel);
    expect(weights.headBias).not.toEqual(before.headBias);

    expect(metrics.steps).toBe(10);
    expect(metrics.curve.map((p) => [p.epoch, p.batch, p.step])).toEqual([[1, 5, 5], [2, 5, 10]]);
    expect(metrics.classLabels).toEqual([0, 1, 2, 3]);
    expect(metrics.heldOut).toEqual([3]);
    expect(metrics.newClassTestAccuracy).toBe(metrics.perClassTestAccuracy['3']);
    // The held-out class is learnt by the head alone.
    expect(metrics.newClassTestAccuracy).toBeGreaterThan(0.5);
    expect(metrics.valAccuracy).toBeGreaterThan(metrics.valAccuracyBefore);
    expect(result.metrics).toMatchObject({
      testAccuracy: metrics.testAccuracy,
      valAccuracy: metrics.valAccuracy,
      newClassTestAccuracy: metrics.newClassTestAccuracy,
      steps: 10,
      curve: metrics.curve,
      testClasses: { labels: [0, 1, 2, 3], confusion: metrics.confusion, heldOut: [3], accuracy: [0, 1, 2, 3].map((l) => metrics.perClassTestAccuracy[String(l)]) },
    });
    expect((result.metrics.testClasses as { count: number[] }).count).toEqual(metrics.confusion.map((row) => row.reduce((a, b) => a + b, 0)));
    expect(result.producer).toMatchObject({ backend: 'wasm' });
  });

  it('is deterministic for a seed', async () => {
    const a = await run({ ...quick, epochs: 1 });
    const b = await run({ ...quick, epochs: 1 });
    const c = await run({ ...quick, epochs: 1, seed: 5 });
    expect(a.weights.headKernel).toEqual(b.weights.headKernel);
    expect(a.weights.headKernel).not.toEqual(c.weights.headKernel);
  });

  it('gives byte-identical weights.bin and metrics with the frozen base cached and without', async () => {
    const files = async (env: Record<string, string>) => {
      for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
      const { ctx, metrics } = await run({ ...quick, epochs: 3 });
      vi.unstubAllEnvs();
      // Wall-clock fields differ between any two runs; everything else must not.
      const { msPerStep: _ms, durationMs: _d, ...numbers } = metrics as PhaseTwoMetricsFile & { durationMs?: number };
      return { weights: await readFile(join(ctx.outDir, MODEL_DIR, 'weights.bin')), numbers };
    };
    const off = await files({ [BASE_CACHE_ENV]: 'off' });
    const on = await files({});
    // No room for training images: only the validation features are kept (mixed bounds are
    // tested with the seed's image size in @graft/train's frozen-base.test.ts).
    const partial = await files({ [BASE_CACHE_MB_ENV]: '0' });
    expect(on.weights.equals(off.weights)).toBe(true);
    expect(partial.weights.equals(off.weights)).toBe(true);
    expect(on.numbers).toEqual(off.numbers);
    expect(partial.numbers).toEqual(off.numbers);
    expect(off.numbers.curve).toHaveLength(3);
    expect(off.numbers.valAccuracy).not.toBe(off.numbers.valAccuracyBefore);
  });

  it('trains every layer with trainBase', async () => {
    const before = await weightsOf(transplant.path);
    const { weights } = await run({ ...quick, epochs: 1, trainBase: true });
    for (const name of BASE) expect(weights[name]).not.toEqual(before[name]);
  });

  it('rejects a model without a head for every phase-two class', async () => {
    await expect(run(quick, phaseOne)).rejects.toMatchObject({
      code: 'HEAD_WIDTH_MISMATCH',
      exitCode: 2,
      message: expect.stringContaining('put the transplant stage between phase-one and phase-two'),
    });
    const noData = await stageContext(root, phaseTwoStage, quick, { model: transplant });
    await expect(phaseTwoStage.run(noData)).rejects.toMatchObject({ code: 'INPUT_MISSING' });
    expect(phaseTwoStage.params.parse({})).toMatchObject({ epochs: 8, batchesPerEpoch: 550, batchSize: 100, trainBase: false, seed: 0 });
  });
});
