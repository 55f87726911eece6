import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@graft/core';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { initBackend } from './backend.ts';
import { predictClasses } from './evaluate.ts';
import { MODEL_JSON, WEIGHTS_BIN, loadModel, saveModel } from './io.ts';
import { buildNetwork, networkVariables, readWeights, specFromModel } from './network.ts';
import type { NetworkSpec } from './network.ts';

const tiny: NetworkSpec = { rows: 8, cols: 8, filters: 3, kernelSize: 3, hidden: 16, numClasses: 3, dropoutRate: 0.3 };
let dir: string;

beforeAll(async () => {
  await initBackend('cpu');
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'graft-model-io-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('saveModel / loadModel', () => {
  it('round-trips weights bit for bit, spec, metadata and predictions', async () => {
    const model = buildNetwork(tiny, new Rng(3));
    await saveModel(model, join(dir, 'model'), { classLabels: [0, 1, 2] });
    const loaded = await loadModel(join(dir, 'model'));
    expect(readWeights(networkVariables(loaded))).toEqual(readWeights(networkVariables(model)));
    expect(specFromModel(loaded)).toEqual(tiny);
    expect(loaded.getUserDefinedMetadata()).toEqual({ classLabels: [0, 1, 2] });
    // Random pixels: any input tells two networks apart unless their weights are the same.
    const rng = new Rng(1);
    const data = { length: 20, rows: 8, cols: 8, images: Uint8Array.from({ length: 20 * 64 }, () => rng.nextInt(256)), labels: new Uint8Array(20) };
    expect(predictClasses(networkVariables(loaded), tiny, data)).toEqual(predictClasses(networkVariables(model), tiny, data));
    model.dispose();
    loaded.dispose();
  });

  it('writes the standard LayersModel files', async () => {
    const model = buildNetwork(tiny, new Rng(3));
    await saveModel(model, dir);
    const json = JSON.parse(await readFile(join(dir, MODEL_JSON), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest).toHaveLength(1);
    expect(json.weightsManifest[0].paths).toEqual([WEIGHTS_BIN]);
    expect(json.weightsManifest[0].weights.map((w: { name: string }) => w.name)).toEqual([
      'conv/kernel',
      'conv/bias',
      'fc1/kernel',
      'fc1/bias',
      'head/kernel',
      'head/bias',
    ]);
    const bin = await readFile(join(dir, WEIGHTS_BIN));
    const params = (3 * 3 * 3 + 3) + (27 * 16 + 16) + (16 * 3 + 3);
    expect(bin.byteLength).toBe(params * 4);
    // Any tfjs loader accepts it too, not only ours.
    const viaMemory = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) }),
    );
    expect(readWeights(networkVariables(viaMemory))).toEqual(readWeights(networkVariables(model)));
    model.dispose();
    viaMemory.dispose();
  });

  it('says which file is missing or broken', async () => {
    await expect(loadModel(join(dir, 'nope'))).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND', message: expect.stringContaining('does not exist') });
    await writeFile(join(dir, MODEL_JSON), '{ not json');
    await expect(loadModel(dir)).rejects.toMatchObject({ code: 'MODEL_INVALID', message: expect.stringContaining(MODEL_JSON) });
    const model = buildNetwork(tiny, new Rng(3));
    await saveModel(model, dir);
    await rm(join(dir, WEIGHTS_BIN));
    await expect(loadModel(dir)).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND', message: expect.stringContaining(WEIGHTS_BIN) });
    await writeFile(join(dir, WEIGHTS_BIN), new Uint8Array(12));
    await expect(loadModel(dir)).rejects.toMatchObject({ code: 'MODEL_INVALID' });
    model.dispose();
  });
});
