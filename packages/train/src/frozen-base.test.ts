import * as tf from '@tensorflow/tfjs';
import { Rng } from '@graft/core';
import { syntheticImages } from '@graft/data';
import { SEED_NETWORK, buildNetwork, convPool, featureGeometry, gatherBatch, initBackend, inputTensor, networkVariables, readWeights } from '@graft/model';
import type { Batch, NetworkSpec } from '@graft/model';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BASE_CACHE_ENV, BASE_CACHE_MB_ENV, PooledFeatureCache, baseCacheSettings, defaultBaseCacheBytes } from './frozen-base.ts';
import { shuffledPlan } from './plans.ts';
import { trainLoop } from './train-loop.ts';
import { HEAD_ONLY } from './recipes.ts';

// The seed's shapes on the wasm backend: what phase two runs.
const spec: NetworkSpec = { ...SEED_NETWORK, numClasses: 4 };
const train = syntheticImages({ length: 150, rows: 28, cols: 28, numClasses: 4, seed: 7 });
const validation = syntheticImages({ length: 60, rows: 28, cols: 28, numClasses: 4, seed: 8 });
const IMAGE_BYTES = featureGeometry(spec).flat * 4;

beforeAll(async () => {
  await initBackend('wasm');
});
afterEach(() => {
  vi.unstubAllEnvs();
});

const bytes = (t: tf.Tensor) => new Uint8Array((t.dataSync() as Float32Array).slice().buffer);

describe('PooledFeatureCache', () => {
  it('gives convPool of the batch bit for bit, whatever is cached, and caches up to its bound', () => {
    const model = buildNetwork(spec, new Rng(1));
    const vars = networkVariables(model);
    const cache = new PooledFeatureCache(spec, train, 40 * IMAGE_BYTES + 100);
    expect(cache.capacity).toBe(40);
    const batches: Batch[] = [
      [0, 50], // nothing cached yet: the first 40 are kept
      Uint32Array.from([45, 3, 3, 120, 10, 49, 0]), // cached, duplicated, past the bound
      [20, 60],
      Uint32Array.from([7, 8, 9]), // all cached
      Uint32Array.from([140, 141, 140]), // nothing cached, no room left
    ];
    const tensorsBefore = tf.memory().numTensors;
    for (const batch of batches) {
      const { x, size } = gatherBatch(train, batch);
      const want = tf.tidy(() => convPool(vars, inputTensor(x, size, spec)));
      const got = cache.pooled(vars, batch, x);
      expect(got.shape).toEqual(want.shape);
      expect(bytes(got)).toEqual(bytes(want));
      tf.dispose([got, want]);
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(cache.size).toBe(40);
    expect(cache.hits).toBe(4 + 20 + 3);
    expect(cache.misses).toBe(50 + 3 + 20 + 3);
    model.dispose();
  });

  it('holds nothing with a zero bound', () => {
    const model = buildNetwork(spec, new Rng(1));
    const vars = networkVariables(model);
    const cache = new PooledFeatureCache(spec, train, 0);
    const { x } = gatherBatch(train, [0, 10]);
    cache.pooled(vars, [0, 10], x).dispose();
    cache.pooled(vars, [0, 10], x).dispose();
    expect([cache.capacity, cache.size, cache.hits]).toEqual([0, 0, 0]);
    model.dispose();
  });
});

describe('baseCacheSettings', () => {
  it('is on by default with a bound of 1 GiB, at most an eighth of the memory and half of what is available', () => {
    expect(baseCacheSettings({}).enabled).toBe(true);
    expect(baseCacheSettings({}).maxBytes).toBeLessThanOrEqual(2 ** 30);
    expect(defaultBaseCacheBytes(64 * 2 ** 30, 32 * 2 ** 30)).toBe(2 ** 30);
    expect(defaultBaseCacheBytes(4 * 2 ** 30, 3 * 2 ** 30)).toBe(2 ** 29);
    expect(defaultBaseCacheBytes(64 * 2 ** 30, 2 ** 29)).toBe(2 ** 28);
    expect(baseCacheSettings({ [BASE_CACHE_ENV]: 'off', [BASE_CACHE_MB_ENV]: '12' })).toEqual({ enabled: false, maxBytes: 12 * 2 ** 20 });
    expect(baseCacheSettings({ [BASE_CACHE_ENV]: 'on', [BASE_CACHE_MB_ENV]: '0' })).toEqual({ enabled: true, maxBytes: 0 });
  });

  it('refuses a value it does not know, naming the variable (exit 2)', () => {
    expect(() => baseCacheSettings({ [BASE_CACHE_ENV]: 'yes' })).toThrow(expect.objectContaining({ code: 'BAD_ENVIRONMENT', exitCode: 2, message: expect.stringContaining('GRAFT_BASE_CACHE=yes') }));
    for (const bad of ['1.5', '-1', '1e3', 'lots']) {
      expect(() => baseCacheSettings({ [BASE_CACHE_MB_ENV]: bad })).toThrow(expect.objectContaining({ code: 'BAD_ENVIRONMENT', exitCode: 2, message: expect.stringContaining(`GRAFT_BASE_CACHE_MB=${bad}`) }));
    }
  });
});

describe('trainLoop with the frozen base cached', () => {
  async function headOnly(env: Record<string, string>) {
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
    // The same transplanted-like model every time: a base from seed 2, trained head-only.
    const model = buildNetwork(spec, new Rng(2));
    const tensorsBefore = tf.memory().numTensors;
    const logged: Array<Record<string, unknown>> = [];
    const result = await trainLoop({
      logger: { info: (obj) => logged.push(obj as Record<string, unknown>), warn() {} },
      ...HEAD_ONLY,
      model,
      train,
      validation,
      epochs: 3,
      // 5 × 40 rows from 150: each epoch wraps into a second permutation, so a batch can hold a row twice.
      plan: shuffledPlan(train.length, 40, 5),
      rng: new Rng(3),
      learningRate: 1e-2,
      l2: 0.001,
      keepProb: 0.7,
      evalEvery: 2,
      evaluation: 'inline',
    });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    const weights = readWeights(networkVariables(model));
    model.dispose();
    vi.unstubAllEnvs();
    const cache = logged.find((obj) => 'reused' in obj) ?? null;
    return { curve: result.curve, weights, cache };
  }

  it('gives the same curve and weights, bit for bit, as computing the base at every step', async () => {
    const off = await headOnly({ [BASE_CACHE_ENV]: 'off' });
    const on = await headOnly({});
    // 1 MiB holds 60 of the 150 images: the rest are computed at every step, beside cached ones.
    const partial = await headOnly({ [BASE_CACHE_MB_ENV]: '1' });
    expect(off.curve.length).toBe(6);
    // 15 steps of 40 images: 600 conv+pool outputs; each image computed once when all fit,
    // plus the second copy of two rows that came twice in one batch before being cached.
    expect(off.cache).toBeNull();
    expect(on.cache).toEqual({ cachedImages: 150, reused: 448, computed: 152 });
    expect(partial.cache).toMatchObject({ cachedImages: 60 });
    expect(partial.cache!.computed).toBeGreaterThan(150);
    expect(on.curve).toEqual(off.curve);
    expect(partial.curve).toEqual(off.curve);
    for (const name of ['headKernel', 'headBias'] as const) {
      expect(new Uint8Array(on.weights[name].buffer)).toEqual(new Uint8Array(off.weights[name].buffer));
      expect(new Uint8Array(partial.weights[name].buffer)).toEqual(new Uint8Array(off.weights[name].buffer));
    }
    // Training did something: the head moved and the validation accuracy is not constant.
    const start = readWeights(networkVariables(buildNetwork(spec, new Rng(2))));
    expect(on.weights.headKernel).not.toEqual(start.headKernel);
    expect(new Set(on.curve.map((p) => p.loss)).size).toBe(6);
  });
});
