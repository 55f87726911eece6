import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { computeKey, type KeySpec } from './key.ts';

const spec = { stage: 'phase-one', stageVersion: '1', params: { epochs: 10, lr: 1e-4, layers: [30, 500] }, inputs: { data: 'a'.repeat(64) } };

const golden = JSON.parse(readFileSync(new URL('./key.golden.json', import.meta.url), 'utf8')) as { keys: { what: string; spec: KeySpec; key: string }[] };

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

  it('gives the shipped configs the keys they had before canonicalJson moved to @graft/core', () => {
    expect(golden.keys.length).toBeGreaterThanOrEqual(15);
    for (const { what, spec: recorded, key } of golden.keys) expect(computeKey(recorded), what).toBe(key);
  });
});
