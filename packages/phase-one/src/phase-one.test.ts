import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InputArtifact, ProgressReporter } from '@graft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_DIR } from '@graft/model';
import { METRICS_FILE } from '@graft/train';
import { phaseOneStage } from './phase-one.ts';
import type { PhaseOneMetricsFile } from './phase-one.ts';
import { inputArtifact, stageContext, syntheticSplit } from '@graft/testing';

let root: string;
let split: InputArtifact;
// 10x10 synthetic images keep the full-width network (30 filters, 500 units) fast (wasm backend).
const quick = { epochs: 2, batchSize: 20, evalEvery: 3, learningRate: 1e-3, maxBatchesPerEpoch: 6 };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'graft-phase-one-'));
  split = await syntheticSplit(root, { numLabels: 4, holdout: [3] });
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function run(params: Record<string, unknown>, options: Parameters<typeof stageContext>[4] = {}) {
  const ctx = await stageContext(root, phaseOneStage, params, { data: split }, options);
  const result = await phaseOneStage.run(ctx);
  const metrics = JSON.parse(await readFile(join(ctx.outDir, METRICS_FILE), 'utf8')) as PhaseOneMetricsFile;
  const weights = await readFile(join(ctx.outDir, MODEL_DIR, 'weights.bin'));
  return { ctx, result, metrics, weights };
}

describe('phaseOneStage', () => {
  it('trains on the phase-one classes and writes the model and metrics', async () => {
    const { ctx, result, metrics } = await run(quick);
    expect((await readdir(ctx.outDir)).sort()).toEqual([METRICS_FILE, MODEL_DIR]);
    expect((await readdir(join(ctx.outDir, MODEL_DIR))).sort()).toEqual(['model.json', 'weights.bin']);
    const modelJson = JSON.parse(await readFile(join(ctx.outDir, MODEL_DIR, 'model.json'), 'utf8'));
    expect(modelJson.userDefinedMetadata).toEqual({ graft: { stage: 'phase-one', dataset: 'phase-one', classLabels: [0, 1, 2] } });
    expect(metrics.classMap).toEqual({ 0: 0, 1: 1, 2: 2 });
    expect(metrics.classLabels).toEqual([0, 1, 2]);
    expect(metrics.curve.map((p) => [p.epoch, p.batch])).toEqual([[1, 3], [1, 6], [2, 3], [2, 6]]);
    expect(metrics.steps).toBe(12);
    expect(metrics.confusion).toHaveLength(3);
    expect(Object.keys(metrics.perClassTestAccuracy)).toEqual(['0', '1', '2']);
    expect(metrics.testAccuracy).toBeGreaterThan(0.8);
    expect(result.metrics).toEqual({
      testAccuracy: metrics.testAccuracy,
      valAccuracy: metrics.valAccuracy,
      msPerStep: metrics.msPerStep,
      steps: 12,
      durationMs: metrics.durationMs,
      curve: metrics.curve,
      testClasses: {
        labels: [0, 1, 2],
        count: metrics.confusion.map((row) => row.reduce((a, b) => a + b, 0)),
        accuracy: [0, 1, 2].map((label) => metrics.perClassTestAccuracy[String(label)]),
        confusion: metrics.confusion,
        heldOut: [3],
      },
    });
    expect((result.metrics.testClasses as { count: number[] }).count.reduce((a, b) => a + b, 0)).toBe(metrics.testCount);
    expect(result.producer).toEqual({ tfjs: expect.stringMatching(/^4\./), backend: 'wasm' });
  });

  it('is deterministic for a seed, and the seed matters', async () => {
    const a = await run({ ...quick, epochs: 1, shuffle: true });
    const b = await run({ ...quick, epochs: 1, shuffle: true });
    const c = await run({ ...quick, epochs: 1, shuffle: true, seed: 1 });
    expect(a.weights.equals(b.weights)).toBe(true);
    expect(a.metrics.curve).toEqual(b.metrics.curve);
    expect(a.weights.equals(c.weights)).toBe(false);
  });

  it('resumes after a crash from the epoch checkpoint and publishes the same model', async () => {
    const params = { ...quick, epochs: 3, shuffle: true };
    const full = await run(params);
    const checkpointDir = join(root, 'crash-ckpt');
    await mkdir(checkpointDir);
    let updates = 0;
    // The progress reporter runs inside the loop: failing on the first step of epoch 2 crashes after epoch 1's checkpoint.
    const crashing: ProgressReporter = {
      start() {},
      update() {
        if (++updates === 7) throw new Error('simulated crash');
      },
      stop() {},
    };
    await expect(run(params, { checkpointDir, progress: crashing })).rejects.toThrow('simulated crash');
    const resumed = await run(params, { checkpointDir });
    expect(resumed.metrics.resumedAfterEpoch).toBe(1);
    expect(resumed.weights.equals(full.weights)).toBe(true);
    expect(resumed.metrics.curve).toEqual(full.metrics.curve);
    expect(resumed.metrics.testAccuracy).toBe(full.metrics.testAccuracy);
  });

  it("trains every class from scratch with dataset 'phase-two'", async () => {
    const { metrics } = await run({ ...quick, epochs: 1, dataset: 'phase-two' });
    expect(metrics.classLabels).toEqual([0, 1, 2, 3]);
    expect(metrics.confusion).toHaveLength(4);
  });

  it('rejects bad params and inputs with clear errors', async () => {
    expect(phaseOneStage.params.safeParse({ epochs: 0 }).success).toBe(false);
    expect(phaseOneStage.params.safeParse({ epoch: 3 }).success).toBe(false);
    expect(phaseOneStage.params.parse({})).toMatchObject({ epochs: 10, batchSize: 100, learningRate: 1e-4, l2: 0.001, keepProb: 0.7, shuffle: false, evalEvery: 50, seed: 0, dataset: 'phase-one' });
    const noInput = await stageContext(root, phaseOneStage, quick, {});
    await expect(phaseOneStage.run(noInput)).rejects.toMatchObject({ code: 'INPUT_MISSING' });
    const notSplit = await stageContext(root, phaseOneStage, quick, { data: inputArtifact(root, 'ingest') });
    await expect(phaseOneStage.run(notSplit)).rejects.toMatchObject({ code: 'SPLIT_INFO_UNREADABLE' });
    await expect(run({ ...quick, batchSize: 500 })).rejects.toMatchObject({ code: 'TRAIN_SET_SMALLER_THAN_BATCH', exitCode: 2, message: expect.stringContaining('lower batchSize') });
  });
});
