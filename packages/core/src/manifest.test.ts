import { describe, expect, it } from 'vitest';
import { manifestSchema, type ArtifactManifest } from './manifest.ts';

const valid: ArtifactManifest = {
  key: 'ab'.repeat(32),
  stage: 'ingest',
  stageVersion: '1',
  params: { n: 2 },
  inputs: {},
  files: [{ path: 'data/x.bin', bytes: 3, sha256: 'cd'.repeat(32) }],
  createdAt: '2026-11-26T02:00:00.000Z',
  durationMs: 5,
  producer: { graft: '0.1.0', node: 'v20.0.0', backend: 'wasm' },
  metrics: {},
  digest: 'ef'.repeat(32),
};

describe('manifestSchema', () => {
  it('accepts recorded sources and keeps fields it does not know (a later graft wrote them)', () => {
    const parsed = manifestSchema.parse({ ...valid, sources: { 'train-images-idx3-ubyte': 'aa'.repeat(32) }, futureField: [1] });
    expect(parsed.sources).toEqual({ 'train-images-idx3-ubyte': 'aa'.repeat(32) });
    expect(parsed['futureField']).toEqual([1]);
  });

  it('rejects a producer field that is not a string, named or not, and an undefined one', () => {
    for (const producer of [{ ...valid.producer, gitCommit: 7 }, { ...valid.producer, extra: 7 }, { ...valid.producer, tfjs: undefined }]) {
      const result = manifestSchema.safeParse({ ...valid, producer });
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]?.message).toMatch(/expected string/);
    }
  });

  it('rejects a file path that leaves the artifact and a manifest that lists itself', () => {
    const result = manifestSchema.safeParse({ ...valid, files: [{ ...valid.files[0], path: '../x' }, { ...valid.files[0], path: 'manifest.json' }] });
    expect(result.error?.issues.map((issue) => issue.message)).toEqual(['must be a relative POSIX path inside the artifact', 'manifest.json cannot list itself']);
  });

  it('derives the type from the schema: a misspelt field does not type-check', () => {
    // @ts-expect-error `stageVerison` is not a manifest field
    const misspelt: ArtifactManifest = { ...valid, stageVerison: '2' };
    expect(manifestSchema.safeParse(misspelt).success).toBe(true);
  });
});
