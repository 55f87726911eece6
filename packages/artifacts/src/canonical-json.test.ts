import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, computeKey } from './canonical-json.ts';

/** Same value, keys inserted in reverse order at every level (fromEntries keeps "__proto__" an own key). */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverseKeys(v)]));
  return value;
}

const spec = { stage: 'phase-one', stageVersion: '1', params: { epochs: 10, lr: 1e-4, layers: [30, 500] }, inputs: { data: 'a'.repeat(64) } };

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
});

describe('computeKey', () => {
  it('hashes a source fingerprint only when there is one', () => {
    const plain = computeKey({ stage: 's', stageVersion: '1', params: {}, inputs: {} });
    const a = computeKey({ stage: 's', stageVersion: '1', params: {}, inputs: {}, sources: { f: 'aa' } });
    const b = computeKey({ stage: 's', stageVersion: '1', params: {}, inputs: {}, sources: { f: 'ab' } });
    expect(new Set([plain, a, b]).size).toBe(3);
  });

  it('is a sha256 hex digest pinned for a known spec (a change here invalidates every store)', () => {
    // sha256 of '{"inputs":{},"params":{},"stage":"s","stageVersion":"1"}'
    expect(computeKey({ stage: 's', stageVersion: '1', params: {}, inputs: {} })).toBe('fdae6c2847e7152bae33bee0de70d510414edc5c3f8550ce36fda28633fd6854');
    expect(computeKey(spec)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not depend on key order in params or inputs, nor on extra spec fields', () => {
    const reordered = { inputs: spec.inputs, params: { layers: [30, 500], lr: 1e-4, epochs: 10 }, stageVersion: '1', stage: 'phase-one' };
    expect(computeKey(reordered)).toBe(computeKey(spec));
    expect(computeKey({ ...spec, note: 'ignored' } as typeof spec)).toBe(computeKey(spec));
  });

  it('changes with any param, input key, stage version or stage name', () => {
    const base = computeKey(spec);
    const variants = [
      { ...spec, params: { ...spec.params, epochs: 11 } },
      { ...spec, params: { ...spec.params, layers: [500, 30] } },
      { ...spec, params: { ...spec.params, extra: null } },
      { ...spec, inputs: { data: 'b'.repeat(64) } },
      { ...spec, inputs: { other: 'a'.repeat(64) } },
      { ...spec, stageVersion: '2' },
      { ...spec, stage: 'phase-two' },
    ];
    const keys = variants.map(computeKey);
    expect(new Set([base, ...keys]).size).toBe(variants.length + 1);
  });

  it('treats 1 and 1.0 alike (same JSON number) but "1" differently', () => {
    expect(computeKey({ ...spec, params: { n: 1.0 } })).toBe(computeKey({ ...spec, params: { n: 1 } }));
    expect(computeKey({ ...spec, params: { n: '1' } })).not.toBe(computeKey({ ...spec, params: { n: 1 } }));
  });
});
