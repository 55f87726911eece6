import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@graft/core';
import type { InputArtifact } from '@graft/core';
import { BIAS_INIT, MODEL_DIR, initBackend, networkVariables, readModelArtifact, readWeights, saveModel, truncatedNormalValues } from '@graft/model';
import { inputArtifact, stageContext, syntheticSplit, trainedModelArtifact } from '@graft/testing';
import type { TrainedModelOptions } from '@graft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRANSPLANT_FILE, columnMapping, graftHeadKernel, transplantStage } from './transplant.ts';
import type { TransplantMetricsFile } from './transplant.ts';

let root: string;
let split: InputArtifact;
let phaseOne: InputArtifact;
const trainQuick: TrainedModelOptions = { epochs: 1, batchSize: 20, learningRate: 1e-3, maxBatchesPerEpoch: 6 };

/** A model trained on the split as phase one would train it (the input transplant expects). */
function trainPhaseOne(options: TrainedModelOptions): Promise<InputArtifact> {
  return trainedModelArtifact(root, split, options);
}

async function weightsOf(artifact: InputArtifact) {
  const model = await readModelArtifact(artifact);
  const weights = readWeights(networkVariables(model));
  model.dispose();
  return weights;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'graft-transplant-'));
  // Labels 0..4 with 2 held out: the new column sits in the middle of the head.
  split = await syntheticSplit(root, { numLabels: 5, holdout: [2] });
  phaseOne = await trainPhaseOne(trainQuick);
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe('graftHeadKernel / columnMapping', () => {
  it('moves each trained column to the unit of its original label and keeps fresh values elsewhere', () => {
    const columns = columnMapping({ phaseOneClasses: [0, 1, 3], phaseTwoClassMap: { 0: 0, 1: 1, 2: 2, 3: 3 } });
    expect(columns).toEqual([
      { label: 0, from: 0, to: 0 },
      { label: 1, from: 1, to: 1 },
      { label: 3, from: 2, to: 3 },
    ]);
    const old = Float32Array.from([1, 2, 3, 4, 5, 6]); // 2 rows x 3 columns
    const fresh = Float32Array.from([-1, -2, -3, -4, -5, -6, -7, -8]); // 2 rows x 4 columns
    expect(Array.from(graftHeadKernel(old, 3, fresh, 4, columns))).toEqual([1, 2, -3, 3, 4, 5, -7, 6]);
  });
});

describe('transplantStage', () => {
  it('grafts a wider head: base bit-identical, old columns copied, new column fresh, bias fresh', async () => {
    const ctx = await stageContext(root, transplantStage, { seed: 3 }, { model: phaseOne, data: split });
    const result = await transplantStage.run(ctx);
    const out = inputArtifact(ctx.outDir, 'transplant');
    const before = await weightsOf(phaseOne);
    const after = await weightsOf(out);
    for (const name of ['convKernel', 'convBias', 'fc1Kernel', 'fc1Bias'] as const) expect(after[name]).toEqual(before[name]);

    const hidden = 500;
    const fresh = truncatedNormalValues(hidden * 5, new Rng(3));
    const column = (kernel: Float32Array, width: number, c: number) => Array.from({ length: hidden }, (_, r) => kernel[r * width + c]);
    for (const [from, to] of [[0, 0], [1, 1], [2, 3], [3, 4]]) expect(column(after.headKernel, 5, to!)).toEqual(column(before.headKernel, 4, from!));
    expect(column(after.headKernel, 5, 2)).toEqual(column(fresh, 5, 2));
    expect(Array.from(after.headBias)).toEqual(new Array(5).fill(Math.fround(BIAS_INIT)));

    const file = JSON.parse(await readFile(join(ctx.outDir, TRANSPLANT_FILE), 'utf8')) as TransplantMetricsFile;
    expect(file.columns.map((c) => [c.from, c.to])).toEqual([[0, 0], [1, 1], [2, 3], [3, 4]]);
    expect(file.heldOut).toEqual([2]);
    expect(result.metrics).toEqual({
      valAccuracy: file.valAccuracy,
      testAccuracy: file.testAccuracy,
      newClassTestAccuracy: file.newClassTestAccuracy,
      copiedColumns: 4,
      testClasses: {
        labels: file.classLabels,
        count: file.confusion.map((row) => row.reduce((a, b) => a + b, 0)),
        accuracy: file.classLabels.map((label) => file.perClassTestAccuracy[String(label)]),
        confusion: file.confusion,
        heldOut: [2],
      },
    });
    // The old classes keep working before any fine-tuning.
    expect(file.testAccuracy).toBeGreaterThan(0.5);
    expect(Object.keys(file.perClassTestAccuracy)).toEqual(['0', '1', '2', '3', '4']);
    expect(file.newClassTestAccuracy).toBe(file.perClassTestAccuracy['2']);
  });

  it('copies the trained bias when copyBias is set', async () => {
    const ctx = await stageContext(root, transplantStage, { copyBias: true }, { model: phaseOne, data: split });
    await transplantStage.run(ctx);
    const before = await weightsOf(phaseOne);
    const after = await weightsOf(inputArtifact(ctx.outDir, 'transplant'));
    expect(Array.from(after.headBias)).toEqual([before.headBias[0], before.headBias[1], Math.fround(BIAS_INIT), before.headBias[2], before.headBias[3]]);
  });

  it('rejects a model whose head does not match the class map', async () => {
    const scratch = await trainPhaseOne({ ...trainQuick, maxBatchesPerEpoch: 1, dataset: 'phase-two' });
    const ctx = await stageContext(root, transplantStage, {}, { model: scratch, data: split });
    await expect(transplantStage.run(ctx)).rejects.toMatchObject({
      code: 'HEAD_WIDTH_MISMATCH',
      exitCode: 2,
      message: expect.stringContaining("5-unit head but the split's classMap has 4 classes"),
    });
  });

  it('rejects a model whose last layer is not a dense head', async () => {
    await initBackend('wasm');
    const odd = tf.sequential({
      layers: [tf.layers.dense({ name: 'head', units: 4, inputShape: [3] }), tf.layers.softmax({ name: 'probabilities' })],
    });
    const dir = join(root, 'odd-model');
    await saveModel(odd, join(dir, MODEL_DIR));
    odd.dispose();
    const ctx = await stageContext(root, transplantStage, {}, { model: inputArtifact(dir, 'phase-one'), data: split });
    await expect(transplantStage.run(ctx)).rejects.toMatchObject({
      code: 'MODEL_ARCHITECTURE',
      message: expect.stringContaining("last layer is 'probabilities' (Softmax), expected a Dense head"),
    });
  });

  it('says what is missing when an input is absent or not a model', async () => {
    await expect(transplantStage.run(await stageContext(root, transplantStage, {}, { data: split }))).rejects.toMatchObject({ code: 'INPUT_MISSING' });
    const ctx = await stageContext(root, transplantStage, {}, { model: split, data: split });
    await expect(transplantStage.run(ctx)).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND', message: expect.stringContaining('model.json does not exist') });
    expect(transplantStage.params.safeParse({ copybias: true }).success).toBe(false);
  });
});
