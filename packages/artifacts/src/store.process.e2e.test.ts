import { spawn } from 'node:child_process';
import { readFile, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { keyFor, tempDir } from './__fixtures__/helpers.ts';
import { ArtifactStore } from './store.ts';

const here = dirname(fileURLToPath(import.meta.url));
const child = join(here, '__fixtures__', 'build-child.ts');
const repoRoot = join(here, '..', '..', '..');

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs build-child.ts in its own Node process through tsx (like `npx tsx`, minus npx's start-up). */
function runChild(args: string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    proc.on('error', reject);
    proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

let root: string;
beforeEach(async () => {
  root = await tempDir();
  const created = root;
  onTestFinished(() => rm(created, { recursive: true, force: true }));
});

describe('ArtifactStore across processes', () => {
  it.each(['crash-before-publish', 'crash-before-rename'])('a process killed (%s) leaves nothing visible; gc cleans up; a rebuild succeeds', async (mode) => {
    const key = keyFor('phase-one', { mode });
    const result = await runChild([root, 'phase-one', JSON.stringify({ mode }), mode]);
    expect(result.signal, result.stderr).toBe('SIGKILL');

    const store = new ArtifactStore(root, { lockTimeoutMs: 2_000 });
    expect(await store.has('phase-one', key)).toBe(false);
    expect(await store.open('phase-one', key)).toBeUndefined();
    expect(await readdir(join(root, 'phase-one')).catch(() => [])).toEqual([]);
    expect(await store.list()).toEqual([]);
    const leftovers = await readdir(join(root, '.tmp'));
    expect(leftovers).toHaveLength(1);
    if (mode === 'crash-before-rename') expect(await readdir(join(root, '.tmp', leftovers[0]!))).toContain('manifest.json');

    const { removed } = await store.gc({ keep: new Set() });
    // The dead builder's temp dir and its lock file (a dead pid's lock is stale).
    expect(removed).toEqual([join(root, '.tmp', leftovers[0]!), join(root, '.locks', 'phase-one', `${key}.lock`)]);
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
    expect(await readdir(join(root, '.locks', 'phase-one'))).toEqual([]);
    // The checkpoint survives for a resume: it is fresh and its key is unpublished.
    expect(await readFile(join(root, '.checkpoints', 'phase-one', key, 'ckpt.json'), 'utf8')).toBe('{"step":1}');

    const rerun = await runChild([root, 'phase-one', JSON.stringify({ mode }), 'publish']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect((await store.verify()).map((r) => r.ok)).toEqual([true]);
  });

  it('the dead builder\'s lock is broken at once by the next process', async () => {
    const key = keyFor('split', {});
    expect((await runChild([root, 'split', JSON.stringify({}), 'crash-before-publish'])).signal).toBe('SIGKILL');
    const store = new ArtifactStore(root, { lockTimeoutMs: 0 });
    await store.abort(await store.begin('split', key));
  });

  it('two processes building the same key end with one valid artifact', async () => {
    const key = keyFor('ingest', { race: true });
    const [a, b] = await Promise.all([runChild([root, 'ingest', JSON.stringify({ race: true }), 'publish', '300']), runChild([root, 'ingest', JSON.stringify({ race: true }), 'publish', '300'])]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const [ra, rb] = [JSON.parse(a.stdout), JSON.parse(b.stdout)];
    // Both processes return the same artifact: the one the first publisher made.
    expect(ra.winner).toBe(rb.winner);
    expect([ra.pid, rb.pid]).toContain(ra.winner);

    const store = new ArtifactStore(root);
    const artifact = await store.open('ingest', key);
    expect(artifact?.manifest.metrics['pid']).toBe(ra.winner);
    expect(artifact?.manifest.files.map((f) => f.path)).toEqual(['data.bin', 'nested/note.txt']);
    expect(await store.verify()).toEqual([{ stage: 'ingest', key, path: artifact!.path, ok: true, problems: [] }]);
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
    expect(await readdir(join(root, '.locks', 'ingest'))).toEqual([]);
  });
});
