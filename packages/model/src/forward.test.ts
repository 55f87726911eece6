import { Rng } from '@graft/core';
import { describe, expect, it } from 'vitest';
import { fillKeepMask } from './forward.ts';

describe('fillKeepMask', () => {
  it('draws exactly the masks of a nextFloat loop and leaves the generator in the same state', () => {
    for (const [seed, n, keepProb] of [[1, 0, 0.7], [2, 1, 0.7], [3, 12_345, 0.7], [4, 1000, 0.25]] as const) {
      const fast = new Rng(seed);
      const slow = new Rng(seed);
      slow.nextNormal(); // a pending Box-Muller spare is part of the state and must survive
      fast.nextNormal();
      const got = fillKeepMask(fast, new Float32Array(n), keepProb);
      const want = Float32Array.from({ length: n }, () => (slow.nextFloat() < keepProb ? 1 / keepProb : 0));
      expect(got).toEqual(want);
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
