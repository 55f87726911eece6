import { cp, mkdir, readFile, readdir, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { buildArtifact, keyFor, publishInfo, tempDir } from './__fixtures__/helpers.ts';
import { computeKey } from './key.ts';
import { CorruptArtifactError } from './manifest.ts';
import { ArtifactStore } from './store.ts';
import { exists } from './fs-util.ts';

let root: string;
let store: ArtifactStore;
beforeEach(async () => {
  root = await tempDir();
  const created = root;
  onTestFinished(() => rm(created, { recursive: true, force: true }));
  store = new ArtifactStore(root, { lockTimeoutMs: 500 });
});

const files = { 'train.arrow': 'train-bytes', 'model/weights.bin': new Uint8Array([1, 2, 3, 4]), 'model/model.json': '{}' };

async function corruptError(stage: string, key: string): Promise<CorruptArtifactError> {
  const error = await store.open(stage, key).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(CorruptArtifactError);
  return error as CorruptArtifactError;
}

describe('ArtifactStore: build and read', () => {
  it('round-trips begin -> write -> publish -> open', async () => {
    const key = keyFor('ingest', { n: 1 });
    const pending = await store.begin('ingest', key);
    expect(pending.outDir.startsWith(join(root, '.tmp') + '/')).toBe(true);
    expect(pending.outDir).toContain(`.${process.pid}.`);
    expect(await readdir(pending.outDir)).toEqual([]);
    expect(pending.checkpointDir).toBe(join(root, '.checkpoints', 'ingest', key));
    await writeFile(join(pending.checkpointDir, 'step.json'), '{}');
    await mkdir(join(pending.outDir, 'model'));
    for (const [path, content] of Object.entries(files)) await writeFile(join(pending.outDir, path), content);
    expect(await store.has('ingest', key)).toBe(false);

    const published = await store.publish(pending, publishInfo({ n: 1 }, { accuracy: 0.98, nan: Number.NaN }));
    expect(published.path).toBe(join(root, 'ingest', key));
    expect(published.manifest.files.map((f) => f.path)).toEqual(['model/model.json', 'model/weights.bin', 'train.arrow']);
    expect(published.manifest.files[1]).toEqual({ path: 'model/weights.bin', bytes: 4, sha256: '9f64a747e1b97f131fabb6b447296c9b6f0201e79fb3c5356e6c77e89b6a806a' });
    expect(published.manifest.metrics).toEqual({ accuracy: 0.98, nan: null });
    expect(published.manifest).toMatchObject({ key, stage: 'ingest', stageVersion: '1', params: { n: 1 }, inputs: {}, durationMs: 12 });

    expect(await store.has('ingest', key)).toBe(true);
    const opened = await store.open('ingest', key);
    expect(opened).toEqual(published);
    expect(await readFile(join(opened!.path, 'train.arrow'), 'utf8')).toBe('train-bytes');
    // Nothing left behind: temp dir renamed away, checkpoints dropped, lock released.
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
    await expect(stat(pending.checkpointDir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(join(root, '.locks', 'ingest'))).toEqual([]);
  });

  it('publishes an artifact with no files', async () => {
    const artifact = await buildArtifact(store, 'split', { empty: true }, {});
    expect(artifact.manifest.files).toEqual([]);
    expect(await store.open('split', artifact.key)).toEqual(artifact);
  });

  it('returns undefined for an absent artifact', async () => {
    expect(await store.open('ingest', keyFor('ingest', {}))).toBeUndefined();
    expect(await store.has('ingest', keyFor('ingest', {}))).toBe(false);
  });

  it('refuses stage names and keys that are not one safe path segment', async () => {
    for (const [stage, key] of [['../x', 'k'], ['runs', 'k'], ['.tmp', 'k'], ['a.b', 'k'], ['ok', '../k'], ['ok', ''], ['ok', 'a.b']] as const) {
      expect(() => store.artifactDir(stage, key)).toThrow(expect.objectContaining({ code: 'ARTIFACT_BAD_NAME' }));
    }
  });

  it('abort deletes the output, keeps checkpoints and releases the lock', async () => {
    const key = keyFor('phase-one', {});
    const pending = await store.begin('phase-one', key);
    await writeFile(join(pending.outDir, 'half.bin'), 'x');
    await writeFile(join(pending.checkpointDir, 'epoch-3.json'), '{}');
    await store.abort(pending);
    await store.abort(pending);
    await expect(stat(pending.outDir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(pending.checkpointDir)).toEqual(['epoch-3.json']);
    expect(await store.has('phase-one', key)).toBe(false);
    const again = await store.begin('phase-one', key); // would time out if the lock were still held
    expect(await readdir(again.checkpointDir)).toEqual(['epoch-3.json']);
    await store.abort(again);
  });

  it('begin clears temp dirs a dead build of the same key left, and only those', async () => {
    const key = keyFor('phase-one', { dead: true });
    const other = keyFor('phase-one', { other: true });
    const tmp = join(store.root, '.tmp');
    await mkdir(join(tmp, `phase-one.${key}.999999.deadbeef0000`, 'model'), { recursive: true });
    await mkdir(join(tmp, `phase-one.${other}.999999.deadbeef0000`), { recursive: true });
    const pending = await store.begin('phase-one', key);
    expect((await readdir(tmp)).sort()).toEqual([`phase-one.${other}.999999.deadbeef0000`, pending.outDir.split('/').pop()].sort());
    await store.abort(pending);
  });

  it('refuses to publish twice or after abort', async () => {
    const key = keyFor('split', {});
    const pending = await store.begin('split', key);
    await store.publish(pending, publishInfo({}));
    await expect(store.publish(pending, publishInfo({}))).rejects.toMatchObject({ code: 'ARTIFACT_NOT_PENDING' });
  });

  it('refuses a stage output containing manifest.json or a symlink, leaving nothing behind', async () => {
    for (const [name, make] of [
      ['ARTIFACT_RESERVED_NAME', (dir: string) => writeFile(join(dir, 'manifest.json'), '{}')],
      ['ARTIFACT_NOT_REGULAR_FILE', (dir: string) => symlink('/etc/hostname', join(dir, 'link'))],
    ] as const) {
      const key = keyFor('split', { name });
      const pending = await store.begin('split', key);
      await make(pending.outDir);
      await expect(store.publish(pending, publishInfo({ name }))).rejects.toMatchObject({ code: name });
      expect(await store.has('split', key)).toBe(false);
      await expect(stat(join(root, 'split', key))).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await readdir(join(root, '.tmp'))).toEqual([]);
      await store.abort(await store.begin('split', key)); // lock was released
    }
  });

  it('keeps a valid copy another process published first and drops its own', async () => {
    const first = await buildArtifact(store, 'ingest', { n: 1 }, files);
    const saved = join(root, 'saved');
    await cp(first.path, saved, { recursive: true });
    await store.discard('ingest', first.key);

    // Rebuild; right before our rename, "the other process" publishes its copy.
    const racing = new ArtifactStore(root, { beforeRename: () => cp(saved, first.path, { recursive: true }) });
    const pending = await racing.begin('ingest', first.key);
    await writeFile(join(pending.outDir, 'ours.txt'), 'ours');
    const result = await racing.publish(pending, publishInfo({ n: 1 }));
    expect(result.manifest).toEqual(first.manifest);
    expect((await readdir(first.path)).sort()).toEqual(['manifest.json', 'model', 'train.arrow']);
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
  });

  it('replaces a directory without a manifest sitting where the artifact goes', async () => {
    const key = keyFor('ingest', { n: 2 });
    const racing = new ArtifactStore(root, {
      beforeRename: async () => {
        await mkdir(join(root, 'ingest', key), { recursive: true });
        await writeFile(join(root, 'ingest', key, 'junk'), 'junk');
      },
    });
    const pending = await racing.begin('ingest', key);
    await writeFile(join(pending.outDir, 'ours.txt'), 'ours');
    await racing.publish(pending, publishInfo({ n: 2 }));
    expect((await readdir(join(root, 'ingest', key))).sort()).toEqual(['manifest.json', 'ours.txt']);
    expect((await store.open('ingest', key))?.manifest.files.map((f) => f.path)).toEqual(['ours.txt']);
  });
});

describe('ArtifactStore: corruption', () => {
  let key: string;
  let dir: string;
  beforeEach(async () => {
    const artifact = await buildArtifact(store, 'phase-one', { epochs: 1 }, files);
    key = artifact.key;
    dir = artifact.path;
  });

  it.each([
    ['a flipped byte', async (d: string) => writeFile(join(d, 'model', 'weights.bin'), new Uint8Array([1, 2, 3, 5])), 'model/weights.bin: sha256 mismatch'],
    ['a truncated file', async (d: string) => truncate(join(d, 'train.arrow'), 3), 'train.arrow: size mismatch, 3 bytes, expected 11'],
    ['a deleted file', async (d: string) => rm(join(d, 'model', 'model.json')), 'model/model.json: missing'],
    ['a garbage manifest', async (d: string) => writeFile(join(d, 'manifest.json'), 'not json {'), 'manifest.json: not valid JSON'],
    ['a missing manifest', async (d: string) => rm(join(d, 'manifest.json')), 'manifest.json: missing'],
    ['a directory in place of a file', async (d: string) => { await rm(join(d, 'train.arrow')); await mkdir(join(d, 'train.arrow')); }, 'train.arrow: not a regular file'],
  ])('detects %s, naming the file', async (_name, damage, problem) => {
    await damage(dir);
    const error = await corruptError('phase-one', key);
    expect(error).toMatchObject({ code: 'ARTIFACT_CORRUPT', stage: 'phase-one', key, path: dir });
    expect(error.problems).toEqual([expect.stringContaining(problem)]);
    expect(error.message).toContain(dir);
    expect(error.message).toContain(problem);

    const [report] = await store.verify(key.slice(0, 8));
    expect(report).toMatchObject({ stage: 'phase-one', key, path: dir, ok: false, problems: error.problems });

    await store.discard('phase-one', key);
    expect(await store.open('phase-one', key)).toBeUndefined();
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
    const rebuilt = await buildArtifact(store, 'phase-one', { epochs: 1 }, files);
    expect(await store.open('phase-one', key)).toEqual(rebuilt);
  });

  it('reports every bad file at once', async () => {
    await truncate(join(dir, 'train.arrow'), 0);
    await rm(join(dir, 'model', 'model.json'));
    const error = await corruptError('phase-one', key);
    expect(error.problems).toEqual(['model/model.json: missing', 'train.arrow: size mismatch, 0 bytes, expected 11']);
  });

  it('detects a manifest copied from another artifact', async () => {
    const other = await buildArtifact(store, 'phase-one', { epochs: 2 }, files);
    await cp(join(other.path, 'manifest.json'), join(dir, 'manifest.json'));
    expect((await corruptError('phase-one', key)).problems.join()).toMatch(/describes phase-one\/[0-9a-f]+, not phase-one\//);
  });

  it('ignores extra files nobody listed', async () => {
    await writeFile(join(dir, 'notes.txt'), 'added by hand');
    expect((await store.open('phase-one', key))?.key).toBe(key);
  });
});

describe('ArtifactStore: list, resolvePrefix, verify', () => {
  it('lists published artifacts oldest first, skipping runs, internal dirs and broken ones', async () => {
    const a = await buildArtifact(store, 'ingest', { n: 1 }, { a: 'a' });
    await new Promise((r) => setTimeout(r, 5));
    const b = await buildArtifact(store, 'split', { n: 1 }, { b: 'b' });
    const broken = await buildArtifact(store, 'split', { n: 2 }, { c: 'c' });
    await writeFile(join(broken.path, 'manifest.json'), '');
    await mkdir(join(root, 'runs', '20250101-000000-abc'), { recursive: true });
    await writeFile(join(root, 'runs', '20250101-000000-abc', 'run.json'), '{}');
    await store.begin('phase-one', keyFor('phase-one', {})); // an unfinished build in .tmp
    expect((await store.list()).map((m) => m.key)).toEqual([a.key, b.key]);
  });

  it('is empty for a store that does not exist yet', async () => {
    const missing = new ArtifactStore(join(root, 'nowhere'));
    expect(await missing.list()).toEqual([]);
    expect(await missing.verify()).toEqual([]);
    expect(await missing.resolvePrefix('ab')).toEqual([]);
    expect(await missing.gc({ keep: new Set() })).toEqual({ removed: [], freedBytes: 0, kept: [] });
    expect(await exists(join(root, 'nowhere'))).toBe(false);
  });

  it('resolves key prefixes across stages, or within one with stage/prefix', async () => {
    const made = [];
    for (const stage of ['ingest', 'split', 'transplant']) for (let n = 0; n < 6; n++) made.push(await buildArtifact(store, stage, { n }, {}));
    const target = made[7]!;
    expect(await store.resolvePrefix(target.key)).toEqual([{ stage: 'split', key: target.key, path: target.path }]);
    expect(await store.resolvePrefix(target.key.slice(0, 10).toUpperCase())).toEqual([{ stage: 'split', key: target.key, path: target.path }]);
    expect(await store.resolvePrefix(`split/${target.key.slice(0, 6)}`)).toHaveLength(1);
    expect(await store.resolvePrefix(`ingest/${target.key.slice(0, 20)}`)).toEqual([]);
    const byFirstChar = made.filter((m) => m.key.startsWith(target.key[0]!));
    expect(await store.resolvePrefix(target.key[0]!)).toHaveLength(byFirstChar.length);
    expect(await store.resolvePrefix('')).toHaveLength(made.length);
  });

  it('verifies everything, reporting each artifact', async () => {
    const good = await buildArtifact(store, 'ingest', { n: 1 }, { a: 'aaaa' });
    const bad = await buildArtifact(store, 'split', { n: 1 }, { b: 'bbbb' });
    await writeFile(join(bad.path, 'b'), 'BBBB');
    const reports = await store.verify();
    expect(reports).toEqual([
      { stage: 'ingest', key: good.key, path: good.path, ok: true, problems: [] },
      { stage: 'split', key: bad.key, path: bad.path, ok: false, problems: [expect.stringMatching(/^b: sha256 mismatch, [0-9a-f]{64}, expected [0-9a-f]{64}$/)] },
    ]);
    expect(await store.verify(bad.key.slice(0, 12))).toHaveLength(1);
    expect(await store.verify('zzzz')).toEqual([]);
  });

  it('re-derives every key from its manifest: recorded sources included, a key its manifest does not explain reported', async () => {
    const sources = { 'train-images-idx3-ubyte': 'ab'.repeat(32) };
    const key = computeKey({ stage: 'ingest', stageVersion: '1', params: { n: 2 }, inputs: {}, sources });
    const pending = await store.begin('ingest', key);
    await writeFile(join(pending.outDir, 'a'), 'a');
    const withSources = await store.publish(pending, { ...publishInfo({ n: 2 }), sources });
    expect(withSources.manifest.sources).toEqual(sources);
    // Published under a key that does not follow from what its manifest records.
    const stray = keyFor('split', { n: 3 });
    const wrong = await store.begin('split', stray);
    await writeFile(join(wrong.outDir, 'b'), 'b');
    await store.publish(wrong, publishInfo({ n: 4 }));
    const reports = await store.verify();
    expect(reports.find((r) => r.key === key)).toMatchObject({ ok: true, problems: [] });
    expect(reports.find((r) => r.key === stray)).toMatchObject({
      ok: false,
      problems: [expect.stringContaining('the key re-derived from its stage, version, params, inputs and sources is')],
    });
  });
});

describe('ArtifactStore: gc', () => {
  it('removes unkept artifacts and reports their bytes; dry run removes nothing', async () => {
    const kept = await buildArtifact(store, 'ingest', { n: 1 }, { a: '1234' });
    const dropped = await buildArtifact(store, 'split', { n: 1 }, { b: '123456', 'c/d': '12' });
    await mkdir(join(root, 'runs', 'r1'), { recursive: true });
    await writeFile(join(root, 'runs', 'r1', 'run.json'), '{}');

    const dry = await store.gc({ keep: new Set([kept.key]), dryRun: true });
    expect(dry).toEqual({ removed: [dropped.path], freedBytes: 8 + (await stat(join(dropped.path, 'manifest.json'))).size, kept: [] });
    expect(await store.has('split', dropped.key)).toBe(true);

    expect(await store.gc({ keep: new Set([kept.key]) })).toEqual(dry);
    expect(await store.has('split', dropped.key)).toBe(false);
    expect(await store.open('ingest', kept.key)).toEqual(kept);
    expect(await readFile(join(root, 'runs', 'r1', 'run.json'), 'utf8')).toBe('{}');
    expect(await store.gc({ keep: new Set([kept.key]) })).toEqual({ removed: [], freedBytes: 0, kept: [] });
  });

  it('removes dead temp dirs and stale checkpoints but keeps those of a live build', async () => {
    const live = await store.begin('phase-one', keyFor('phase-one', { live: true }));
    await writeFile(join(live.outDir, 'partial'), 'x');
    await writeFile(join(live.checkpointDir, 'ckpt'), 'x');
    // Leftovers of a crashed process: its pid is dead and its lock is gone.
    const deadTmp = join(root, '.tmp', `phase-one.${keyFor('phase-one', { dead: true })}.999999999.abcdef`);
    await mkdir(deadTmp);
    await writeFile(join(deadTmp, 'partial'), '12345');
    const trash = join(root, '.tmp', `discard.split.${keyFor('split', {})}.999999999.abcdef`);
    await mkdir(trash);
    const oldCkpt = join(root, '.checkpoints', 'phase-one', keyFor('phase-one', { old: true }));
    const freshCkpt = join(root, '.checkpoints', 'phase-one', keyFor('phase-one', { fresh: true }));
    for (const dir of [oldCkpt, freshCkpt]) {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'epoch.json'), '12');
    }
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600_000);
    await utimes(join(oldCkpt, 'epoch.json'), twoDaysAgo, twoDaysAgo);
    await utimes(oldCkpt, twoDaysAgo, twoDaysAgo);
    // Checkpoint of a key that got published anyway (e.g. by another run that won the race).
    const published = await buildArtifact(store, 'split', { p: 1 }, {});
    const orphan = join(root, '.checkpoints', 'split', published.key);
    await mkdir(orphan, { recursive: true });

    const { removed, freedBytes } = await store.gc({ keep: new Set([published.key]) });
    expect(removed.sort()).toEqual([deadTmp, trash, oldCkpt, orphan].sort());
    expect(freedBytes).toBe(5 + 2);
    expect(await readdir(live.outDir)).toEqual(['partial']);
    expect(await readdir(live.checkpointDir)).toEqual(['ckpt']);
    expect(await readdir(freshCkpt)).toEqual(['epoch.json']);

    // Once the live build is aborted its temp dir goes, its (fresh) checkpoint stays for a resume.
    await store.abort(live);
    // A file graft did not make is reported and kept, never deleted.
    await writeFile(join(root, '.tmp', 'not-ours'), 'x');
    const again = await store.gc({ keep: new Set([published.key]) });
    expect(again.removed).toEqual([]);
    expect(again.kept).toEqual([{ path: join(root, '.tmp', 'not-ours'), reason: 'not a temp directory made by graft' }]);
    expect(await readdir(live.checkpointDir)).toEqual(['ckpt']);
  });

  it('leaves an artifact alone while a live process holds its lock', async () => {
    const artifact = await buildArtifact(store, 'ingest', { n: 1 }, { a: 'a' });
    const pending = await store.begin('ingest', artifact.key);
    expect((await store.gc({ keep: new Set() })).removed).toEqual([]);
    await store.abort(pending);
    expect((await store.gc({ keep: new Set() })).removed).toEqual([artifact.path]);
  });
});
