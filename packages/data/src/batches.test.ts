import fc from 'fast-check';
import { Rng } from '@graft/core';
import { describe, expect, it } from 'vitest';
import { contiguousBatches, epochPermutation } from './batches.ts';

/** Python's range(start, stop, step) for a positive step, and zip, written out literally. */
function pyRange(start: number, stop: number, step: number): number[] {
  const out: number[] = [];
  for (let i = start; i < stop; i += step) out.push(i);
  return out;
}
function pythonFormula(n: number, b: number): Array<[number, number]> {
  const starts = pyRange(0, n - b, b);
  const ends = pyRange(b, n, b);
  return starts.slice(0, Math.min(starts.length, ends.length)).map((s, i) => [s, ends[i]!]);
}

describe('contiguousBatches', () => {
  it('matches values printed by CPython for zip(range(0,n-b,b), range(b,n,b))', () => {
    // [n, b, count, last] from python3.
    const cases: Array<[number, number, number, [number, number] | undefined]> = [
      [55000, 100, 549, [54800, 54900]],
      [49100, 100, 490, [48900, 49000]],
      [250, 100, 2, [100, 200]],
      [200, 100, 1, [0, 100]],
      [101, 100, 1, [0, 100]],
      [100, 100, 0, undefined],
      [0, 100, 0, undefined],
      [5, 1, 4, [3, 4]],
      [1, 1, 0, undefined],
      [7, 3, 2, [3, 6]],
      [6, 3, 1, [0, 3]],
    ];
    for (const [n, b, count, last] of cases) {
      const batches = contiguousBatches(n, b);
      expect(batches.length, `n=${n} b=${b}`).toBe(count);
      expect(batches.at(-1)).toEqual(last);
    }
  });

  it('equals the literal python formula for any n and b', () => {
    fc.assert(
      fc.property(fc.integer({ min: -5, max: 2000 }), fc.integer({ min: 1, max: 300 }), (n, b) => {
        expect(contiguousBatches(n, b)).toEqual(pythonFormula(n, b));
      }),
    );
  });

  it('rejects a non-positive or fractional batch size', () => {
    expect(() => contiguousBatches(10, 0)).toThrow(RangeError);
    expect(() => contiguousBatches(10, -1)).toThrow(RangeError);
    expect(() => contiguousBatches(10, 2.5)).toThrow(RangeError);
  });
});

describe('epochPermutation', () => {
  it('is a permutation, reproducible from the seed, and different every epoch', () => {
    const rng = new Rng(11);
    const first = epochPermutation(1000, rng);
    const second = epochPermutation(1000, rng);
    const identity = Uint32Array.from({ length: 1000 }, (_, i) => i);
    expect(Uint32Array.from(first).sort()).toEqual(identity);
    expect(Uint32Array.from(second).sort()).toEqual(identity);
    expect(first).not.toEqual(identity);
    expect(second).not.toEqual(first);
    const replay = new Rng(11);
    expect(epochPermutation(1000, replay)).toEqual(first);
    expect(epochPermutation(1000, replay)).toEqual(second);
  });

  it('handles n = 0 and n = 1', () => {
    expect(epochPermutation(0, new Rng(1))).toEqual(new Uint32Array(0));
    expect(epochPermutation(1, new Rng(1))).toEqual(Uint32Array.of(0));
  });
});
