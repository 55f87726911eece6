import { describe, expect, it } from 'vitest';
import { Rng } from './random.ts';

describe('Rng', () => {
  it('gives the same stream for the same seed and different streams for different seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 8 }, () => a.nextUint32());
    const sb = Array.from({ length: 8 }, () => b.nextUint32());
    const sc = Array.from({ length: 8 }, () => c.nextUint32());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
  });

  it('resumes exactly from a saved state, including a pending normal', () => {
    const a = new Rng(7);
    a.nextNormal(); // leaves a spare normal cached
    const saved = JSON.parse(JSON.stringify(a.getState()));
    const expected = [a.nextNormal(), a.nextFloat(), a.nextNormal()];
    const b = Rng.fromState(saved);
    expect([b.nextNormal(), b.nextFloat(), b.nextNormal()]).toEqual(expected);
  });

  it('draws uniform floats in [0,1) with a plausible mean', () => {
    const rng = new Rng(1);
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      const x = rng.nextFloat();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
      sum += x;
    }
    expect(sum / 20000).toBeCloseTo(0.5, 1);
  });

  it('truncates normals at two standard deviations', () => {
    const rng = new Rng(3);
    const xs = Array.from({ length: 20000 }, () => rng.nextTruncatedNormal(0.1));
    expect(Math.max(...xs.map(Math.abs))).toBeLessThan(0.2);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    // Truncation at ±2σ shrinks the std to about 0.88σ.
    expect(std).toBeGreaterThan(0.085);
    expect(std).toBeLessThan(0.09);
  });

  it('shuffles into a permutation', () => {
    const rng = new Rng(5);
    const xs = rng.shuffle(Array.from({ length: 100 }, (_, i) => i));
    expect([...xs].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(xs).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});
