import * as tf from '@tensorflow/tfjs';
import { Rng } from '@graft/core';
import { describe, expect, it } from 'vitest';
import { initBackend } from './backend.ts';
import { baseFeatures, predictClasses, predictFromBaseFeatures } from './evaluate.ts';
import { convPool, gatherBatch, inputTensor } from './forward.ts';
import type { LabelledImages } from './forward.ts';
import { SEED_NETWORK, buildNetwork, featureGeometry, networkVariables } from './network.ts';
import type { NetworkSpec } from './network.ts';

// The seed's shapes: per-image independence is a property of the kernels at these sizes
// (XNNPACK tiles the conv by output pixels; a batch of 100 and one of 7 tile differently).
const spec: NetworkSpec = { ...SEED_NETWORK, numClasses: 10 };
const data = randomImages(230, 3);

/** Sparse random 28×28 images (about a fifth of the pixels lit, as in MNIST) with labels 0-9. */
function randomImages(length: number, seed: number): LabelledImages {
  const rng = new Rng(seed);
  const images = Uint8Array.from({ length: length * 28 * 28 }, () => (rng.nextFloat() < 0.2 ? 1 + (rng.nextUint32() % 255) : 0));
  const labels = Uint8Array.from({ length }, (_, i) => i % 10);
  return { length, rows: 28, cols: 28, images, labels };
}

const bytes = (t: tf.Tensor) => new Uint8Array((t.dataSync() as Float32Array).slice().buffer);

describe.each(['wasm', 'cpu'] as const)('the frozen base on %s', (backend) => {
  it("convPool of an image does not depend on the other images of its batch", async () => {
    await initBackend(backend);
    const model = buildNetwork(spec, new Rng(4));
    const vars = networkVariables(model);
    const { flat } = featureGeometry(spec);
    const pooledOf = (rows: Uint32Array) => {
      const { x, size } = gatherBatch(data, rows);
      return tf.tidy(() => convPool(vars, inputTensor(x, size, spec)));
    };
    // A training batch on wasm (XNNPACK, where tiling could matter); fewer on cpu, whose
    // plain loops are slow at these shapes on a busy machine.
    const n = backend === 'wasm' ? 100 : 40;
    const batch = Uint32Array.from({ length: n }, (_, i) => (i * 37) % data.length);
    const whole = pooledOf(batch);
    const wholeBytes = bytes(whole);
    // Not a constant: relu and pooling leave many distinct positive values.
    expect(new Set(whole.dataSync()).size).toBeGreaterThan(1000);
    // Sub-batches of other sizes and orders, and single images, give each image's bytes exactly.
    const picks = [[0], [n - 1], [5, 17, 32, 3, 38, 21, 10], Array.from({ length: n === 100 ? 37 : 13 }, (_, i) => n - 1 - 2 * i), Array.from({ length: n - 36 }, (_, i) => i + 20)];
    for (const pick of picks) {
      const part = pooledOf(Uint32Array.from(pick, (i) => batch[i]!));
      const got = bytes(part);
      pick.forEach((i, k) => {
        expect(got.subarray(k * flat * 4, (k + 1) * flat * 4)).toEqual(wholeBytes.subarray(i * flat * 4, (i + 1) * flat * 4));
      });
      part.dispose();
    }
    whole.dispose();
    model.dispose();
  });

  it('predictFromBaseFeatures gives predictClasses exactly, the head alone on the kept features', async () => {
    await initBackend(backend);
    const model = buildNetwork(spec, new Rng(5));
    const vars = networkVariables(model);
    const base = baseFeatures(vars, spec, data, 100);
    expect(base.chunks.map((c) => c.shape)).toEqual([[100, 500], [100, 500], [30, 500]]);
    expect(predictFromBaseFeatures(vars, base)).toEqual(predictClasses(vars, spec, data, 100));
    // The head changes (training), the kept base features still answer for it.
    const head = vars.headKernel.dataSync().map((v, i) => (i % 3 === 0 ? -v : v));
    vars.headKernel.assign(tf.tensor(head, vars.headKernel.shape));
    const predicted = predictFromBaseFeatures(vars, base);
    expect(predicted).toEqual(predictClasses(vars, spec, data, 100));
    expect(new Set(predicted).size).toBeGreaterThan(1);
    const tensorsBefore = tf.memory().numTensors;
    base.dispose();
    expect(tf.memory().numTensors).toBe(tensorsBefore - 3);
    model.dispose();
  });
});
