import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '@graft/core';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { initBackend } from './backend.ts';
import { predictClasses } from './evaluate.ts';
import { MODEL_JSON, WEIGHTS_BIN, listModelFiles, loadModel, modelFilesOf, saveModel } from './io.ts';
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
    const loaded = await loadModel(join(dir, 'model'), await listModelFiles(join(dir, 'model')));
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
    await expect(loadModel(join(dir, 'nope'), new Map([[MODEL_JSON, 10]]))).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND', message: expect.stringContaining('does not exist') });
    await writeFile(join(dir, MODEL_JSON), '{ not json');
    await expect(loadModel(dir, await listModelFiles(dir))).rejects.toMatchObject({ code: 'MODEL_INVALID', message: expect.stringContaining(MODEL_JSON) });
    const model = buildNetwork(tiny, new Rng(3));
    await saveModel(model, dir);
    const files = await listModelFiles(dir);
    await rm(join(dir, WEIGHTS_BIN));
    await expect(loadModel(dir, files)).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND', message: expect.stringContaining(WEIGHTS_BIN) });
    await writeFile(join(dir, WEIGHTS_BIN), new Uint8Array(12));
    await expect(loadModel(dir, await listModelFiles(dir))).rejects.toMatchObject({ code: 'MODEL_INVALID' });
    model.dispose();
  });
});

describe('loadModel reads only the files it is given (issue #9 cases 4, 6)', () => {
  const WEIGHT_BYTES = (3 * 3 * 3 + 3 + 27 * 16 + 16 + 16 * 3 + 3) * 4;

  /** A saved model plus a hand-edited model.json (as an attacker with write access to the store would). */
  async function editedModel(edit: (json: { weightsManifest: Array<{ paths: string[]; weights: Array<{ shape: number[] }> }> }) => void): Promise<void> {
    const model = buildNetwork(tiny, new Rng(3));
    await saveModel(model, dir);
    model.dispose();
    const json = JSON.parse(await readFile(join(dir, MODEL_JSON), 'utf8'));
    edit(json);
    await writeFile(join(dir, MODEL_JSON), JSON.stringify(json));
  }

  async function refusal(files?: ReadonlyMap<string, number>): Promise<string> {
    const error = await loadModel(dir, files ?? (await listModelFiles(dir))).then(
      (loaded) => {
        loaded.dispose();
        return undefined;
      },
      (e: unknown) => e as { code: string; message: string },
    );
    expect(error, 'the model loaded').toBeDefined();
    expect(error!.code).toBe('MODEL_INVALID');
    return error!.message;
  }

  it('takes the file list of an artifact manifest, relative to the model directory', () => {
    const files = modelFilesOf(
      [
        { path: 'metrics.json', bytes: 5 },
        { path: 'model/model.json', bytes: 100 },
        { path: 'model/weights.bin', bytes: 2000 },
        { path: 'modelx/other.bin', bytes: 1 },
      ],
      'model',
    );
    expect([...files]).toEqual([
      ['model.json', 100],
      ['weights.bin', 2000],
    ]);
  });

  it('refuses a weights path the file list does not hold, even when the file is there', async () => {
    await editedModel((json) => (json.weightsManifest[0]!.paths = ['stray.bin']));
    await copyFile(join(dir, WEIGHTS_BIN), join(dir, 'stray.bin'));
    const files = new Map(await listModelFiles(dir));
    files.delete('stray.bin');
    expect(await refusal(files)).toContain('names the weights file stray.bin, which is not one of the artifact\'s files');
  });

  it('never reads through a symbolic link: not a linked file, not a linked directory', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'graft-victim-'));
    try {
      await editedModel((json) => (json.weightsManifest[0]!.paths = ['linked.bin']));
      await copyFile(join(dir, WEIGHTS_BIN), join(outside, 'weights.bin'));
      await symlink(join(outside, 'weights.bin'), join(dir, 'linked.bin'));
      // Listed (as if the manifest named it), it is still refused: the open does not follow links.
      expect(await refusal(new Map([...(await listModelFiles(dir)), ['linked.bin', WEIGHT_BYTES]]))).toContain('linked.bin is a symbolic link');
      await editedModel((json) => (json.weightsManifest[0]!.paths = ['sub/weights.bin']));
      await symlink(outside, join(dir, 'sub'));
      expect(await refusal(new Map([...(await listModelFiles(dir)), ['sub/weights.bin', WEIGHT_BYTES]]))).toContain(`${join(dir, 'sub')} is a symbolic link`);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('refuses a path named twice (150 × weights.bin took 2.6 GiB) and surplus files, before reading any weights', async () => {
    await editedModel((json) => (json.weightsManifest[0]!.paths = new Array(150).fill(WEIGHTS_BIN)));
    expect(await refusal()).toContain(`names the weights file ${WEIGHTS_BIN} more than once`);
    await editedModel((json) => (json.weightsManifest[0]!.paths = [WEIGHTS_BIN, 'extra.bin']));
    await writeFile(join(dir, 'extra.bin'), new Uint8Array(64));
    expect(await refusal()).toContain(`its weight specs need ${WEIGHT_BYTES} bytes, but the weights files it names (weights.bin, extra.bin) hold ${WEIGHT_BYTES + 64}`);
    // A spec inflated to a billion elements is caught by the same sum, not by an allocation.
    await editedModel((json) => (json.weightsManifest[0]!.weights[0]!.shape = [1000, 1000, 1000]));
    expect(await refusal()).toContain('its weight specs need');
  });

  it('refuses paths out of the directory, model.json as weights, and a file that changed since it was listed', async () => {
    for (const path of ['../weights.bin', '/etc/passwd', 'a/../weights.bin', 'a\\b', '']) {
      await editedModel((json) => (json.weightsManifest[0]!.paths = [path]));
      expect(await refusal(), path).toContain('names a weights file outside its directory');
    }
    await editedModel((json) => (json.weightsManifest[0]!.paths = [MODEL_JSON]));
    expect(await refusal()).toContain('which is not one of the artifact\'s files');
    await editedModel(() => undefined);
    const files = await listModelFiles(dir);
    await writeFile(join(dir, WEIGHTS_BIN), new Uint8Array(WEIGHT_BYTES + 4));
    expect(await refusal(files)).toContain(`is ${WEIGHT_BYTES + 4} bytes, but the artifact manifest lists ${WEIGHT_BYTES}`);
  });

  it('lists only regular files when loading outside a store', async () => {
    await mkdir(join(dir, 'nested'));
    await writeFile(join(dir, 'nested', 'a.bin'), new Uint8Array(3));
    await symlink('/etc/hostname', join(dir, 'link'));
    expect([...(await listModelFiles(dir))]).toEqual([['nested/a.bin', 3]]);
  });
});
