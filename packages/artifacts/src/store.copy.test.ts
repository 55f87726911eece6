import { cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { buildArtifact, tempDir } from './__fixtures__/helpers.ts';
import { CorruptArtifactError, MANIFEST_FILE, manifestDigest } from './manifest.ts';
import { ArtifactStore } from './store.ts';

let source: ArtifactStore;
let target: ArtifactStore;
beforeEach(async () => {
  const roots = [await tempDir(), await tempDir()];
  onTestFinished(async () => {
    for (const root of roots) await rm(root, { recursive: true, force: true });
  });
  source = new ArtifactStore(roots[0]!);
  target = new ArtifactStore(roots[1]!, { lockTimeoutMs: 500 });
});

const files = { 'train.arrow': 'train-bytes', 'model/weights.bin': new Uint8Array([1, 2, 3, 4]) };

/** Begins `stage/key` in the target store and copies the source artifact's listed files (not its manifest) into outDir. */
async function stageCopy(stage: string, key: string) {
  const pending = await target.begin(stage, key);
  const from = source.artifactDir(stage, key);
  await cp(from, pending.outDir, { recursive: true });
  await rm(join(pending.outDir, MANIFEST_FILE));
  return { pending, manifestBytes: await readFile(join(from, MANIFEST_FILE)) };
}

describe('ArtifactStore.publishCopy', () => {
  it('publishes the original manifest byte for byte and leaves nothing behind', async () => {
    const original = await buildArtifact(source, 'ingest', { n: 1 }, files);
    const { pending, manifestBytes } = await stageCopy('ingest', original.key);
    const copy = await target.publishCopy(pending, manifestBytes, 's3://bucket/x');
    expect(copy.manifest).toEqual(original.manifest);
    expect(await readFile(join(copy.path, MANIFEST_FILE))).toEqual(manifestBytes);
    expect(await target.open('ingest', original.key)).toEqual(copy);
    expect(await readdir(join(target.root, '.tmp'))).toEqual([]);
    expect(await readdir(join(target.root, '.locks', 'ingest'))).toEqual([]);
  });

  it('refuses a file whose bytes do not match, publishes nothing and releases the lock', async () => {
    const original = await buildArtifact(source, 'ingest', { n: 2 }, files);
    const { pending, manifestBytes } = await stageCopy('ingest', original.key);
    await writeFile(join(pending.outDir, 'train.arrow'), 'train-byteZ');
    const error = await target.publishCopy(pending, manifestBytes, 's3://bucket/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptArtifactError);
    expect((error as CorruptArtifactError).problems).toEqual([expect.stringMatching(/^train\.arrow: sha256 mismatch/)]);
    expect((error as Error).message).toContain('s3://bucket/x');
    expect(await target.has('ingest', original.key)).toBe(false);
    expect(await readdir(join(target.root, '.tmp'))).toEqual([]);
    // The lock is free again: a new begin does not wait out the 500 ms timeout.
    await target.abort(await target.begin('ingest', original.key));
  });

  it('refuses files the manifest does not list, a missing file, and a manifest of another key', async () => {
    const original = await buildArtifact(source, 'ingest', { n: 3 }, files);
    const other = await buildArtifact(source, 'ingest', { n: 4 }, files);

    const extra = await stageCopy('ingest', original.key);
    await mkdir(join(extra.pending.outDir, 'sub'));
    await writeFile(join(extra.pending.outDir, 'sub', 'extra.bin'), 'x');
    await expect(target.publishCopy(extra.pending, extra.manifestBytes, 'remote')).rejects.toMatchObject({ problems: ['sub/extra.bin: not listed in manifest.json'] });

    const missing = await stageCopy('ingest', original.key);
    await rm(join(missing.pending.outDir, 'model', 'weights.bin'));
    await expect(target.publishCopy(missing.pending, missing.manifestBytes, 'remote')).rejects.toMatchObject({ problems: ['model/weights.bin: missing'] });

    const swapped = await stageCopy('ingest', original.key);
    const otherManifest = await readFile(join(source.artifactDir('ingest', other.key), MANIFEST_FILE));
    await expect(target.publishCopy(swapped.pending, otherManifest, 'remote')).rejects.toMatchObject({ problems: [expect.stringContaining('not ingest/')] });

    const garbage = await stageCopy('ingest', original.key);
    await expect(target.publishCopy(garbage.pending, new TextEncoder().encode('{"key": 1}'), 'remote')).rejects.toBeInstanceOf(CorruptArtifactError);

    expect(await target.has('ingest', original.key)).toBe(false);
    expect(await readdir(join(target.root, '.tmp'))).toEqual([]);
  });

  it('refuses a manifest whose key its content does not explain, even with a valid digest', async () => {
    const original = await buildArtifact(source, 'ingest', { n: 5 }, files);
    const { pending, manifestBytes } = await stageCopy('ingest', original.key);
    // Another artifact's params under this key, the digest recomputed: only the key check can tell.
    const { digest: _old, ...rest } = { ...JSON.parse(Buffer.from(manifestBytes).toString('utf8')), params: { n: 6 } };
    const forged = new TextEncoder().encode(JSON.stringify({ ...rest, digest: manifestDigest(rest) }));
    await expect(target.publishCopy(pending, forged, 'remote')).rejects.toMatchObject({ problems: [expect.stringContaining('the key re-derived from its stage')] });
    expect(await target.has('ingest', original.key)).toBe(false);
  });
});
