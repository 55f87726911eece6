import * as tf from '@tensorflow/tfjs';
import { Rng } from '@graft/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.ts';
import { BIAS_INIT, KERNEL_STDDEV, SEED_NETWORK, buildNetwork, networkVariables, readWeights, specFromModel } from './network.ts';
import type { NetworkSpec } from './network.ts';

const tiny: NetworkSpec = { rows: 8, cols: 8, filters: 3, kernelSize: 3, hidden: 16, numClasses: 3, dropoutRate: 0.3 };

beforeAll(async () => {
  await initBackend('cpu');
});

describe('buildNetwork', () => {
  it('gives identical weights for the same seed and different ones for another seed', () => {
    const a = readWeights(networkVariables(buildNetwork(tiny, new Rng(5))));
    const b = readWeights(networkVariables(buildNetwork(tiny, new Rng(5))));
    const c = readWeights(networkVariables(buildNetwork(tiny, new Rng(6))));
    expect(a).toEqual(b);
    expect(a.fc1Kernel).not.toEqual(c.fc1Kernel);
  });

  it('initialises kernels as truncated normals and biases to 0.1, with the seed shapes', () => {
    const model = buildNetwork({ ...SEED_NETWORK, numClasses: 9 }, new Rng(0));
    const vars = networkVariables(model);
    expect(vars.convKernel.shape).toEqual([5, 5, 1, 30]);
    expect(vars.fc1Kernel.shape).toEqual([12 * 12 * 30, 500]);
    expect(vars.headKernel.shape).toEqual([500, 9]);
    const w = readWeights(vars);
    for (const bias of [w.convBias, w.fc1Bias, w.headBias]) expect(new Set(bias)).toEqual(new Set([Math.fround(BIAS_INIT)]));
    const k = w.fc1Kernel;
    let max = 0;
    let sumSq = 0;
    for (const v of k) {
      max = Math.max(max, Math.abs(v));
      sumSq += v * v;
    }
    expect(max).toBeLessThanOrEqual(2 * KERNEL_STDDEV);
    // Truncation at 2 sigma leaves a std of about 0.88 sigma.
    expect(Math.sqrt(sumSq / k.length)).toBeCloseTo(0.088, 2);
    expect(model.outputs[0]!.shape).toEqual([null, 9]);
    model.dispose();
  });

  it('reads its spec back from the model', () => {
    const model = buildNetwork(tiny, new Rng(0));
    expect(specFromModel(model)).toEqual(tiny);
    model.dispose();
  });
});

describe('networkVariables', () => {
  it('rejects a model whose last layer is not a dense head, naming the layers', () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ name: 'fc1', units: 2, inputShape: [3] }), tf.layers.softmax({ name: 'soft' })] });
    expect(() => networkVariables(model)).toThrow(/last layer is 'soft' \(Softmax\), expected a Dense head/);
    model.dispose();
  });

  it('rejects a model without the conv layer', () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ name: 'head', units: 2, inputShape: [3] })] });
    expect(() => networkVariables(model)).toThrow(expect.objectContaining({ code: 'MODEL_ARCHITECTURE' }));
    model.dispose();
  });
});
