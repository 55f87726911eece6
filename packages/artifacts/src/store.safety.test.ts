import { lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { buildArtifact, keyFor, publishInfo, tempDir } from './__fixtures__/helpers.ts';
import { STORE_MARKER, inspectStoreRoot } from './store-marker.ts';
import { ArtifactStore } from './store.ts';

let work: string;
let root: string;
let outside: string;
beforeEach(async () => {
  work = await tempDir();
  const created = work;
  onTestFinished(() => rm(created, { recursive: true, force: true }));
  root = join(work, 'store');
  outside = join(work, 'outside');
  await mkdir(join(outside, 'docs'), { recursive: true });
  await writeFile(join(outside, 'docs', 'letter.txt'), 'mine');
});

describe('store marker', () => {
  it('is written when a store is created, and a non-empty unmarked directory is refused', async () => {
    expect(await inspectStoreRoot(root)).toEqual({ kind: 'absent' });
    await buildArtifact(new ArtifactStore(root), 'ingest', {}, { a: '1' });
    expect(JSON.parse(await readFile(join(root, STORE_MARKER), 'utf8'))).toMatchObject({ format: 'graft-artifact-store', version: 1 });

    await expect(new ArtifactStore(outside).gc({ keep: new Set() })).rejects.toMatchObject({ code: 'STORE_NOT_GRAFT', exitCode: 2, message: expect.stringContaining('docs/') });
    await expect(new ArtifactStore(outside).begin('ingest', keyFor('ingest', {}))).rejects.toMatchObject({ code: 'STORE_NOT_GRAFT' });
    await expect(new ArtifactStore(outside).list()).rejects.toMatchObject({ code: 'STORE_NOT_GRAFT' });
    expect(await readdir(outside)).toEqual(['docs']);
  });

  it('adopts an unmarked store whose every entry is graft\'s, but not one with a foreign entry', async () => {
    await buildArtifact(new ArtifactStore(root), 'ingest', {}, { a: '1' });
    await rm(join(root, STORE_MARKER));
    expect(await inspectStoreRoot(root)).toEqual({ kind: 'legacy' });
    await mkdir(join(root, 'ingest', 'notes'));
    expect(await inspectStoreRoot(root)).toEqual({ kind: 'foreign', foreign: ['ingest/notes (no valid manifest.json)'] });
    await rm(join(root, 'ingest', 'notes'), { recursive: true });
    await writeFile(join(root, 'todo.txt'), 'x');
    expect(await inspectStoreRoot(root)).toEqual({ kind: 'foreign', foreign: ['todo.txt (a file)'] });
    // init marks it anyway (an explicit decision); the foreign file stays.
    expect(await new ArtifactStore(root).init()).toMatchObject({ kind: 'foreign' });
    expect(await inspectStoreRoot(root)).toEqual({ kind: 'marked', version: 1 });
    expect(await readFile(join(root, 'todo.txt'), 'utf8')).toBe('x');
  });

  it('treats another process\'s marker temp file as a store being made, not a foreign entry', async () => {
    // Two graft processes creating one store: the second looks while the first's marker is
    // still its temp file (seen in CI as STORE_NOT_GRAFT naming `.graft-store.json.13934.tmp`).
    await mkdir(root);
    const temp = `${STORE_MARKER}.13934.tmp`;
    await writeFile(join(root, temp), 'half a marker');
    expect(await inspectStoreRoot(root)).toEqual({ kind: 'empty' });
    await buildArtifact(new ArtifactStore(root), 'ingest', {}, { a: '1' });
    expect(await inspectStoreRoot(root)).toEqual({ kind: 'marked', version: 1 });
    // Never touched; and with anything else foreign beside it, the directory is still refused.
    expect(await readFile(join(root, temp), 'utf8')).toBe('half a marker');
    await rm(root, { recursive: true });
    await mkdir(root);
    await writeFile(join(root, temp), 'x');
    await writeFile(join(root, 'todo.txt'), 'x');
    await writeFile(join(root, `${STORE_MARKER}.tmp`), 'x');
    expect(await inspectStoreRoot(root)).toEqual({ kind: 'foreign', foreign: [`${STORE_MARKER}.tmp (a file)`, 'todo.txt (a file)'] });
  });

  it('refuses a root that is a file, and a marker of a newer format', async () => {
    await writeFile(join(work, 'file'), 'x');
    await expect(new ArtifactStore(join(work, 'file')).begin('ingest', keyFor('ingest', {}))).rejects.toMatchObject({ code: 'STORE_NOT_A_DIRECTORY', exitCode: 2 });
    await mkdir(root);
    await writeFile(join(root, STORE_MARKER), JSON.stringify({ format: 'graft-artifact-store', version: 2 }));
    await expect(new ArtifactStore(root).list()).rejects.toMatchObject({ code: 'STORE_TOO_NEW' });
  });
});

describe('links under the store root', () => {
  it('gc reports a linked .tmp/.locks/.checkpoints and never enters them', async () => {
    const store = new ArtifactStore(root);
    await buildArtifact(store, 'ingest', {}, { a: '1' });
    for (const name of ['.tmp', '.locks', '.checkpoints']) {
      await rm(join(root, name), { recursive: true, force: true });
      await symlink(outside, join(root, name));
    }
    await writeFile(join(outside, 'yarn.lock'), 'not graft');
    const dry = await new ArtifactStore(root).gc({ keep: new Set(), dryRun: true });
    expect(dry.kept.map((k) => k.path).sort()).toEqual([join(root, '.checkpoints'), join(root, '.locks'), join(root, '.tmp')]);
    await expect(new ArtifactStore(root).gc({ keep: new Set() })).rejects.toMatchObject({ code: 'STORE_LINK', exitCode: 2 });
    expect((await readdir(outside)).sort()).toEqual(['docs', 'yarn.lock']);
  });

  it('an artifact containing a link is corrupt and gc keeps it; open() never reads through it', async () => {
    const store = new ArtifactStore(root);
    const artifact = await buildArtifact(store, 'split', {}, { 'part/a.txt': 'a' });
    await rm(join(artifact.path, 'part'), { recursive: true });
    await mkdir(join(outside, 'part'));
    await writeFile(join(outside, 'part', 'a.txt'), 'a');
    await symlink(join(outside, 'part'), join(artifact.path, 'part'));
    await expect(store.open('split', artifact.key)).rejects.toMatchObject({ code: 'ARTIFACT_CORRUPT', problems: expect.arrayContaining([expect.stringContaining('part: is a symbolic link')]) });
    const gc = await store.gc({ keep: new Set() });
    expect(gc.removed).toEqual([]);
    expect(gc.kept[0]).toMatchObject({ path: artifact.path, reason: expect.stringContaining('part') });
    // discard (what `graft run` does with a corrupt artifact) removes the link, not its target.
    await store.discard('split', artifact.key);
    expect(await readFile(join(outside, 'part', 'a.txt'), 'utf8')).toBe('a');
  });

  it('a linked stage directory stops begin/open with STORE_LINK', async () => {
    const store = new ArtifactStore(root);
    await buildArtifact(store, 'ingest', {}, { a: '1' });
    await symlink(outside, join(root, 'split'));
    await expect(store.begin('split', keyFor('split', {}))).rejects.toMatchObject({ code: 'STORE_LINK', exitCode: 2 });
    await expect(new ArtifactStore(root).open('split', keyFor('split', {}))).rejects.toMatchObject({ code: 'STORE_LINK' });
    expect(await readdir(outside)).toEqual(['docs']);
  });
});

describe('publish with replace (--force)', () => {
  it('keeps the old artifact until the new one is in place, and an aborted rebuild leaves it', async () => {
    const store = new ArtifactStore(root);
    const old = await buildArtifact(store, 'ingest', { n: 1 }, { a: 'old' });
    const aborted = await store.begin('ingest', old.key);
    await writeFile(join(aborted.outDir, 'a'), 'new');
    await store.abort(aborted);
    expect(await readFile(join(old.path, 'a'), 'utf8')).toBe('old');

    const pending = await store.begin('ingest', old.key);
    await writeFile(join(pending.outDir, 'a'), 'new');
    // A reader that opened the old file keeps reading the old bytes after the swap.
    const { open } = await import('node:fs/promises');
    const reader = await open(join(old.path, 'a'), 'r');
    const replaced = await store.publish(pending, publishInfo({ n: 1 }), { replace: true });
    expect(await readFile(join(replaced.path, 'a'), 'utf8')).toBe('new');
    expect((await reader.readFile()).toString()).toBe('old');
    await reader.close();
    expect((await store.verify()).map((r) => r.ok)).toEqual([true]);
    expect((await lstat(join(root, '.tmp'))).isDirectory()).toBe(true);
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
  });
});
