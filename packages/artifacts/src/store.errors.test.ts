import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraftError } from '@graft/core';
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { keyFor, publishInfo, tempDir } from './__fixtures__/helpers.ts';
import { ArtifactStore } from './store.ts';

// Disk-full and read-only stores cannot be produced for real in a test (and root ignores
// permissions), so the fs calls are wrapped with an injectable failure.
const injected = vi.hoisted(() => ({ fail: undefined as undefined | ((op: string, path: string, flags?: unknown) => string | undefined) }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const wrap =
    <A extends unknown[], R>(op: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const code = injected.fail?.(op, String(args[0]), args[1]);
      if (code) throw Object.assign(new Error(`${code}: injected, ${op} '${String(args[0])}'`), { code, path: String(args[0]) });
      return fn(...args);
    };
  return {
    ...actual,
    mkdir: wrap('mkdir', actual.mkdir),
    rename: wrap('rename', actual.rename),
    open: wrap('open', actual.open),
    writeFile: wrap('writeFile', actual.writeFile),
  };
});

let root: string;
let store: ArtifactStore;
beforeEach(async () => {
  root = await tempDir();
  const created = root;
  onTestFinished(() => rm(created, { recursive: true, force: true }));
  store = new ArtifactStore(root, { lockTimeoutMs: 200 });
});
afterEach(() => {
  injected.fail = undefined;
});

async function expectNothingLeft(stage: string, key: string): Promise<void> {
  expect(await store.has(stage, key)).toBe(false);
  expect(await readdir(join(root, stage)).catch(() => [])).toEqual([]);
  expect(await readdir(join(root, '.tmp'))).toEqual([]);
  // The lock was released: a new build can start at once.
  await store.abort(await store.begin(stage, key));
}

describe('ArtifactStore IO failures', () => {
  it('turns a full disk while writing the manifest into a plain GraftError and leaves no partial artifact', async () => {
    const key = keyFor('ingest', {});
    const pending = await store.begin('ingest', key);
    await writeFile(join(pending.outDir, 'train.arrow'), 'x'.repeat(1000));
    injected.fail = (op, path) => (op === 'open' && path.endsWith('manifest.json') ? 'ENOSPC' : undefined);
    const error = await store.publish(pending, publishInfo({})).catch((e: unknown) => e);
    injected.fail = undefined;
    expect(error).toBeInstanceOf(GraftError);
    expect(error).toMatchObject({ code: 'STORE_FULL', message: expect.stringMatching(/^Could not publish artifact ingest\/[0-9a-f]{12}: no space left on the device holding .*manifest\.json; free some space and retry\.$/) });
    expect((error as Error).cause).toMatchObject({ code: 'ENOSPC' });
    await store.abort(pending); // what the runner does next: must be harmless
    await expectNothingLeft('ingest', key);
  });

  it('reports a read-only store when the final rename fails', async () => {
    const key = keyFor('split', {});
    const pending = await store.begin('split', key);
    await writeFile(join(pending.outDir, 'a'), 'a');
    injected.fail = (op) => (op === 'rename' ? 'EROFS' : undefined);
    await expect(store.publish(pending, publishInfo({}))).rejects.toMatchObject({
      code: 'STORE_NOT_WRITABLE',
      exitCode: 2,
      message: expect.stringContaining('is on a read-only file system; choose a writable location (--artifacts DIR)'),
    });
    injected.fail = undefined;
    await expectNothingLeft('split', key);
  });

  it('reports a read-only or forbidden store at begin', async () => {
    for (const code of ['EROFS', 'EACCES']) {
      injected.fail = (op) => (op === 'mkdir' ? code : undefined);
      await expect(new ArtifactStore(join(root, 'sub')).begin('ingest', keyFor('ingest', {}))).rejects.toMatchObject({
        name: 'GraftError',
        code: 'STORE_NOT_WRITABLE',
        message: expect.stringMatching(/^Could not create the artifact store: (permission denied for|.* is on a read-only file system)/),
      });
    }
  });

  it('releases the lock if creating the temp dir fails after locking', async () => {
    const key = keyFor('ingest', { n: 1 });
    let calls = 0;
    // The first mkdir (of .tmp) succeeds, the lock dir's too; the outDir's fails.
    injected.fail = (op, path) => (op === 'mkdir' && path.includes(`.tmp/ingest.`) && ++calls === 1 ? 'ENOSPC' : undefined);
    await expect(store.begin('ingest', key)).rejects.toMatchObject({ code: 'STORE_FULL' });
    injected.fail = undefined;
    await expectNothingLeft('ingest', key);
  });

  it('reports a lock that cannot be written', async () => {
    injected.fail = (op, path) => (op === 'writeFile' && path.endsWith('.lock') ? 'EACCES' : undefined);
    await expect(store.begin('ingest', keyFor('ingest', {}))).rejects.toMatchObject({ code: 'STORE_NOT_WRITABLE', message: expect.stringContaining('permission denied for') });
  });
});
