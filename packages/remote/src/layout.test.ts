import { describe, expect, it } from 'vitest';
import { blobObject, manifestObject, matchesSelector, parseManifestObject } from './layout.ts';
import { parseRemoteUrl } from './location.ts';

const key = 'ab'.repeat(32);
const sha = 'cd'.repeat(32);

describe('remote layout', () => {
  it('names objects under the prefix, or at the bucket root without one', () => {
    const withPrefix = parseRemoteUrl('s3://bucket/team/graft');
    expect(blobObject(withPrefix, sha)).toBe(`team/graft/files/sha256/cd/${sha}`);
    expect(manifestObject(withPrefix, 'split', key)).toBe(`team/graft/artifacts/split/${key}/manifest.json`);
    const root = parseRemoteUrl('s3://bucket');
    expect(manifestObject(root, 'split', key)).toBe(`artifacts/split/${key}/manifest.json`);
    expect(() => blobObject(root, '../x')).toThrow('not a sha256');
    expect(() => manifestObject(root, '..', key)).toThrow('not an artifact name');
  });

  it('reads back exactly the manifest names it writes and nothing else', () => {
    const location = parseRemoteUrl('s3://bucket/p');
    expect(parseManifestObject(location, manifestObject(location, 'phase-one', key))).toEqual({ stage: 'phase-one', key });
    for (const name of [
      `p/artifacts/split/${key}/manifest.json.tmp`,
      `p/artifacts/split/${key}/x/manifest.json`,
      `p/artifacts/../${key}/manifest.json`,
      `p/artifacts/runs/${key}/manifest.json`,
      `p/artifacts/split/../manifest.json`,
      `p/artifacts/.tmp/${key}/manifest.json`,
      `q/artifacts/split/${key}/manifest.json`,
      `p/files/sha256/cd/${sha}`,
      `partifacts/split/${key}/manifest.json`,
    ]) {
      expect(parseManifestObject(location, name), name).toBeUndefined();
    }
  });

  it('matches selectors as `graft artifacts ls` prints keys', () => {
    expect(matchesSelector('', 'split', key)).toBe(true);
    expect(matchesSelector('ABAB', 'split', key)).toBe(true);
    expect(matchesSelector('split/abab', 'split', key)).toBe(true);
    expect(matchesSelector('ingest/abab', 'split', key)).toBe(false);
    expect(matchesSelector('abac', 'split', key)).toBe(false);
  });
});
