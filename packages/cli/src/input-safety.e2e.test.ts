/**
 * Hostile and careless input, black-box (issue #9, the input side): the real `graft`
 * binary on temp trees. Every case gets one clear error line and a non-zero exit (2 for
 * input the user can fix) at bounded cost, and nothing outside the store is read or lost.
 */
import { readFile, mkdtemp, rm, writeFile, copyFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MNIST_DIR, graft, plainLines, startGraft, type GraftResult } from './test-support.ts';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'graft-input-safety-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const IDX = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'] as const;

/** A source directory holding the real MNIST files, with some replaced by `files` (name -> bytes). */
async function sourceDir(name: string, files: Record<string, Uint8Array>): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  for (const base of IDX) {
    const replaced = Object.keys(files).find((file) => file.startsWith(base));
    if (replaced) await writeFile(join(dir, replaced), files[replaced]!);
    else await copyFile(join(MNIST_DIR, base), join(dir, base));
  }
  return dir;
}

/** A config file whose only entry ingests `source`. */
async function ingestConfig(name: string, source: string, params: Record<string, unknown> = {}): Promise<string> {
  const file = join(work, `${name}.json`);
  await writeFile(file, JSON.stringify({ name, entries: { ingest: { stage: 'ingest', params: { source, ...params } } } }));
  return file;
}

/** Peak resident memory of a process so far (VmHWM), in bytes; undefined once it has gone. */
async function peakRss(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}

/**
 * Runs `graft <args>` and samples its peak resident memory until it exits. The last
 * sample can miss a peak in the final milliseconds, never invent one: a bound checked
 * on it can pass wrongly only by luck, not fail wrongly.
 */
async function graftWithPeakMemory(args: string[], cwd: string): Promise<GraftResult & { peakBytes: number; ms: number }> {
  const started = performance.now();
  const running = startGraft(args, cwd);
  let peakBytes = 0;
  let done = false;
  void running.exited.then(() => (done = true));
  while (!done) {
    peakBytes = Math.max(peakBytes, (await peakRss(running.child.pid!)) ?? 0);
    await new Promise((r) => setTimeout(r, 5));
  }
  const { code } = await running.exited;
  return { ...running.output(), code: code ?? -1, peakBytes, ms: performance.now() - started };
}

/** The one `graft: ...` line a failed command prints (NDJSON log records aside). */
function errorLine(result: GraftResult): string {
  const lines = plainLines(result.stderr);
  expect(lines, result.stderr.slice(-2000)).toHaveLength(1);
  return lines[0]!;
}

/** An IDX header: unsigned bytes, the given dimensions. */
function idxHeader(dims: number[]): Uint8Array {
  const bytes = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(bytes.buffer);
  bytes.set([0, 0, 8, dims.length]);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  return bytes;
}

describe('IDX input is read at bounded memory (cases 5 and 16)', () => {
  it('rejects a gzip bomb as train-images-idx3-ubyte.gz after the size its header declares, not after inflating it', async () => {
    // A real MNIST header (60000 × 28 × 28, 47 MB) over 1 GiB of zeros in a ~1 MiB file.
    const zeros = gzipSync(new Uint8Array(2 ** 20), { level: 9 });
    const bomb = Buffer.concat([gzipSync(idxHeader([60000, 28, 28])), ...Array.from({ length: 1024 }, () => zeros)]);
    expect(bomb.length).toBeLessThan(2 * 2 ** 20);
    const source = await sourceDir('bomb', { 'train-images-idx3-ubyte.gz': bomb });
    const config = await ingestConfig('bomb', source);
    const result = await graftWithPeakMemory(['run', 'ingest', '--config', config, '--artifacts', join(work, 'bomb-store')], work);
    expect(result.code, result.stderr.slice(-2000)).toBe(2);
    expect(errorLine(result)).toContain('train-images-idx3-ubyte.gz is too long: dimensions [60000, 28, 28] need 47040016 bytes, but it decompresses to more');
    // Inflating the whole bomb needs over 1 GiB; reading up to the declared 47 MB (the
    // other three real files included) stays far below. The node process itself is ~150 MB.
    expect(result.peakBytes).toBeGreaterThan(0);
    expect(result.peakBytes).toBeLessThan(600 * 2 ** 20);
  });

  it('words a rank-255 IDX header in one short line, exit 2', async () => {
    const header = new Uint8Array(4 + 4 * 255).fill(0xff);
    header.set([0, 0, 8, 255]);
    const source = await sourceDir('rank255', { 'train-images-idx3-ubyte': header });
    const result = await graft(['run', 'ingest', '--config', await ingestConfig('rank255', source), '--artifacts', join(work, 'rank-store')], work);
    expect(result.code).toBe(2);
    const line = errorLine(result);
    expect(line).toContain('declares 255 dimension(s) [4294967295, 4294967295, 4294967295, 4294967295, … 251 more]');
    expect(line.length).toBeLessThan(400);
  });
});
