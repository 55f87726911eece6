import { Rng } from '@graft/core';
import { describe, expect, it } from 'vitest';
import { drawDropoutMasks, fillKeepMask, gatherBatch } from './forward.ts';

describe('fillKeepMask', () => {
  it('draws exactly the masks of a nextFloat loop and leaves the generator in the same state', () => {
    // keepProbs whose limit keepProb * 2^32 is an integer (0.5, 0.25), is not (0.7, 0.3), is tiny,
    // or is within 2^-32 of 1 (the plain loop): every mask value and the state after, bit for bit.
    const cases = [[1, 0, 0.7], [2, 1, 0.7], [3, 12_345, 0.7], [4, 1000, 0.25], [5, 20_000, 0.5], [6, 20_000, 0.3], [7, 5000, 1e-9], [8, 5000, 1 - 2 ** -40], [9, 5000, 1 - 2 ** -31]] as const;
    for (const [seed, n, keepProb] of cases) {
      const fast = new Rng(seed);
      const slow = new Rng(seed);
      slow.nextNormal(); // a pending Box-Muller spare is part of the state and must survive
      fast.nextNormal();
      const got = fillKeepMask(fast, new Float32Array(n), keepProb);
      const want = Float32Array.from({ length: n }, () => (slow.nextFloat() < keepProb ? 1 / keepProb : 0));
      expect(new Uint8Array(got.buffer)).toEqual(new Uint8Array(want.buffer));
      expect(fast.getState()).toEqual(slow.getState());
      expect(fast.nextUint32()).toBe(slow.nextUint32());
    }
    // Not a constant: about keepProb of the entries are kept.
    const mask = fillKeepMask(new Rng(9), new Float32Array(10_000), 0.7);
    const kept = mask.filter((v) => v > 0).length;
    expect(kept).toBeGreaterThan(6800);
    expect(kept).toBeLessThan(7200);
  });
});

describe('step buffers', () => {
  const spec = { rows: 8, cols: 8, filters: 3, kernelSize: 3, hidden: 16, numClasses: 3, dropoutRate: 0.3 };

  it('drawDropoutMasks refills arrays of the right length, with the masks fresh arrays would get', () => {
    const fresh = new Rng(5);
    const reusing = new Rng(5);
    let kept = drawDropoutMasks(reusing, 4, spec, 0.7)!;
    drawDropoutMasks(fresh, 4, spec, 0.7);
    for (let step = 0; step < 3; step++) {
      const want = drawDropoutMasks(fresh, 4, spec, 0.7)!;
      const got = drawDropoutMasks(reusing, 4, spec, 0.7, kept)!;
      expect(got.pool).toBe(kept.pool);
      expect(got.fc1).toBe(kept.fc1);
      expect(got).toEqual(want);
      kept = got;
    }
    // Another batch size: new arrays, the old ones untouched.
    const before = kept.pool.slice();
    const other = drawDropoutMasks(reusing, 2, spec, 0.7, kept)!;
    expect(other.pool).not.toBe(kept.pool);
    expect(other.pool).toHaveLength(2 * 3 * 3 * 3);
    expect(kept.pool).toEqual(before);
    expect(drawDropoutMasks(reusing, 2, spec, 1, kept)).toBeNull();
  });

  it('gatherBatch fills `into` when it has the batch length', () => {
    const data = { length: 3, rows: 2, cols: 2, images: Uint8Array.from({ length: 12 }, (_, i) => i * 20), labels: [2, 0, 1] };
    const into = new Float32Array(8).fill(-1);
    const { x, y } = gatherBatch(data, Uint32Array.from([2, 0]), into);
    expect(x).toBe(into);
    expect([...x]).toEqual([160, 180, 200, 220, 0, 20, 40, 60].map((v) => Math.fround(v / 255)));
    expect([...y]).toEqual([1, 2]);
    expect(gatherBatch(data, [0, 1], into).x).not.toBe(into);
  });
});
