import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.ts';

/** Same value, keys inserted in reverse order at every level (fromEntries keeps "__proto__" an own key). */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverseKeys(v)]));
  return value;
}

const golden = JSON.parse(readFileSync(new URL('./canonical-json.golden.json', import.meta.url), 'utf8')) as { values: { value: unknown; canonical: string }[] };

describe('canonicalJson', () => {
  it('sorts keys at every level and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: null, y: true }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":true,"z":null}]},"b":1}');
    expect(canonicalJson([])).toBe('[]');
    expect(canonicalJson({})).toBe('{}');
    expect(canonicalJson('é"\n')).toBe(JSON.stringify('é"\n'));
    expect(canonicalJson(-0)).toBe('0');
  });

  it.each([
    ['undefined at the top', undefined, '$'],
    ['an undefined property', { a: { b: undefined } }, '$.a.b'],
    ['NaN', { lr: Number.NaN }, '$.lr'],
    ['Infinity', [1, Number.POSITIVE_INFINITY], '$[1]'],
    ['a function', { f: () => 1 }, '$.f'],
    ['a bigint', { n: 1n }, '$.n'],
    ['a symbol', { s: Symbol('x') }, '$.s'],
    ['a Date', { when: new Date(0) }, '$.when'],
    ['a Map', { m: new Map() }, '$.m'],
    ['an array hole', { a: [1, , 3] }, '$.a[1]'],
  ])('rejects %s, naming where it is', (_name, value, where) => {
    expect(() => canonicalJson(value)).toThrowError(expect.objectContaining({ code: 'NOT_CANONICAL_JSON', message: expect.stringContaining(`Cannot hash ${where}:`) }));
  });

  it('rejects cycles but accepts shared (non-circular) references', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(/circular/);
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });

  it('round-trips any JSON value, ignores key order, and is a fixed point', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        expect(canonicalJson(reverseKeys(value))).toBe(text);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 300 },
    );
  });

  it('writes the same bytes as the canonicalJson that computed the keys of existing stores', () => {
    expect(golden.values.length).toBeGreaterThan(0);
    for (const { value, canonical } of golden.values) expect(canonicalJson(value)).toBe(canonical);
  });
});
