/**
 * Hostile and careless input, black-box (issue #9, the input side): the real `graft`
 * binary on temp trees. Every case gets one clear error line and a non-zero exit (2 for
 * input the user can fix) at bounded cost, and nothing outside the store is read or lost.
 */
import { createHash } from 'node:crypto';
import { copyFile, cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { canonicalJson } from '@graft/core';
import { tinyChainConfig, writeMnistSlice } from '@graft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MNIST_DIR, filesUnder, graft, logRecords, ls, plainLines, startGraft, type GraftResult } from './test-support.ts';

let work: string;

/** The reference chain on a 600/200-image slice of MNIST, phase one cut to 2 batches: seconds, not minutes. */
function tinyConfig(entries: Record<string, unknown> = {}) {
  return tinyChainConfig({
    source: join(work, 'slice'),
    seed: 1,
    phaseOne: { epochs: 1, maxBatchesPerEpoch: 2, evalEvery: 2 },
    phaseTwo: { epochs: 1, batchesPerEpoch: 2, evalEvery: 2 },
    entries,
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'graft-input-safety-'));
  await writeMnistSlice(join(work, 'slice'));
  await writeFile(join(work, 'tiny.json'), JSON.stringify(tinyConfig()));
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

/** A run refused before it started: exit 2, one line, and not a file written to the store. */
async function expectRefusedBeforeRunning(result: GraftResult, store: string, ...fragments: string[]): Promise<string> {
  expect(result.code, result.stderr.slice(-2000)).toBe(2);
  const line = errorLine(result);
  for (const fragment of fragments) expect(line).toContain(fragment);
  expect(line).not.toContain('unexpected error');
  expect(await filesUnder(store)).toEqual([]);
  return line;
}

/** `plainLines` joined: a config error lists its problems on lines of their own. */
function report(result: GraftResult): string {
  return plainLines(result.stderr).join('\n');
}

describe('params that pass validation must be able to run (case 7)', () => {
  it('refuses batchesPerEpoch=1e9 and batchSize=1e9 when the config is resolved, naming each param, exit 2', async () => {
    const store = join(work, 'bounds-store');
    const sets = ['phase-two.batchesPerEpoch=1e9', 'phase-two.batchSize=1e9', 'phase-one.batchSize=1e9', 'phase-one.epochs=1e12', 'transplant.seed=4294967296'];
    const result = await graft(['run', 'phase-two', '--config', 'tiny.json', ...sets.flatMap((s) => ['--set', s]), '--artifacts', store], work);
    expect(result.code, result.stderr.slice(-2000)).toBe(2);
    // Each problem names the flag that supplied the value.
    for (const assignment of sets) expect(report(result)).toContain(`--set ${assignment}: Too big`);
    expect(report(result)).toContain('(5 problems)');
    expect(await filesUnder(store)).toEqual([]);
    // Within each bound, the product is bounded too: phase two draws each epoch's order up front.
    const product = await graft(['run', 'phase-two', '--config', 'tiny.json', '--set', 'phase-two.batchesPerEpoch=100001', '--artifacts', store], work);
    expect(product.code).toBe(2);
    expect(report(product)).toContain('--set phase-two.batchesPerEpoch=100001: batchesPerEpoch × batchSize is 100001 × 100 = 10000100 rows per epoch, more than the 10000000 allowed');
    expect(await filesUnder(store)).toEqual([]);
  });
});

describe('names that are JavaScript internals (cases 8, 9)', () => {
  const INTERNALS = ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf'];

  it('an input naming one is a config error, exit 2', async () => {
    // One entry per name, all reported at once.
    const extra = Object.fromEntries(INTERNALS.map((name, i) => [`split${i}`, { stage: 'split', inputs: { data: name } }]));
    await writeFile(join(work, 'internal-input.json'), JSON.stringify(tinyConfig(extra)));
    const result = await graft(['run', 'split', '--config', 'internal-input.json', '--artifacts', join(work, 'internals-store')], work);
    expect(result.code, result.stderr.slice(-2000)).toBe(2);
    INTERNALS.forEach((name, i) => expect(report(result)).toContain(`entries.split${i}.inputs.data: refers to "${name}", which is not an entry of this pipeline`));
  });

  it('an entry named "__proto__" is reported, not silently dropped', async () => {
    const json = JSON.stringify(tinyConfig()).replace('"transplant":', '"__proto__":');
    await writeFile(join(work, 'proto-entry.json'), json);
    const result = await graft(['run', 'ingest', '--config', 'proto-entry.json', '--artifacts', join(work, 'proto-store')], work);
    expect(result.code).toBe(2);
    expect(report(result)).toContain('entries.__proto__: "__proto__" is not a valid key');
  });

  it('every --set path that names nothing is an exit-2 error naming the flag, and nothing runs', async () => {
    const cases: Array<[string, string]> = [
      ['toString.epochs=3', 'no entry named "toString"'],
      ['__proto__.epochs=3', 'no entry named "__proto__"'],
      ['constructor.epochs=3', 'no entry named "constructor"'],
      ['split.holdout.x.y=1', 'split.holdout is a list, not an object'],
      ['phase-two.toString=1', 'stage phase-two has no param "toString"'],
      ['phase-two.__proto__=1', 'stage phase-two has no param "__proto__"'],
      ['phase-two.epocs=1', 'stage phase-two has no param "epocs"'],
    ];
    const store = join(work, 'set-store');
    const result = await graft(['run', 'ingest', '--config', 'tiny.json', ...cases.flatMap(([assignment]) => ['--set', assignment]), '--artifacts', store], work);
    expect(result.code, result.stderr.slice(-2000)).toBe(2);
    for (const [assignment, message] of cases) expect(report(result)).toContain(`--set ${assignment}: ${message}`);
    expect(await filesUnder(store)).toEqual([]);
  });
});

describe('smaller cases (16)', { timeout: 300_000 }, () => {
  it('a regular file as the store is refused by every command in one line, exit 2, and left as it was', async () => {
    const file = join(work, 'notes.txt');
    await writeFile(file, 'my notes\n');
    const sha = async () => createHash('sha256').update(await readFile(file)).digest('hex');
    const before = await sha();
    for (const args of [['run', 'ingest', '--config', 'tiny.json'], ['artifacts', 'ls'], ['artifacts', 'verify'], ['artifacts', 'gc'], ['runs', 'ls'], ['compare', 'latest'], ['report', 'latest'], ['ui', '--port', '0']]) {
      const result = await graft([...args, '--artifacts', file], work);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(errorLine(result)).toBe(
        `graft: [STORE_NOT_DIRECTORY] The artifact store ${file} (--artifacts) is a regular file, not a directory. Pass a directory with --artifacts DIR (or GRAFT_ARTIFACTS); one that does not exist yet is created.`,
      );
    }
    const under = await graft(['artifacts', 'gc', '--artifacts', join(file, 'store')], work);
    expect(under.code).toBe(2);
    expect(errorLine(under)).toContain('lies under something that is not a directory');
    expect(await sha()).toBe(before);
  });

  it('--config /dev/zero is refused at once in one line, exit 2', async () => {
    const store = join(work, 'zero-store');
    const started = performance.now();
    const result = await graft(['run', 'ingest', '--config', '/dev/zero', '--artifacts', store], work);
    await expectRefusedBeforeRunning(result, store, 'Cannot read pipeline config: /dev/zero is a character device, not a regular file');
    // Reading /dev/zero until a string overflows took seconds and 512 MB; refusing it takes the process start-up.
    expect(performance.now() - started).toBeLessThan(30_000);
    expect(await ls(store)).toEqual([]);
  });
});

describe('weights are read only from files the artifact manifest lists (cases 4, 6)', { timeout: 600_000 }, () => {
  let base: string;
  let victim: string;
  let victimSha: string;

  beforeAll(async () => {
    base = join(work, 'model-base');
    const built = await graft(['run', 'phase-one', '--config', 'tiny.json', '--artifacts', base], work);
    expect(built.code, built.stderr.slice(-2000)).toBe(0);
    // A folder of someone else's weights outside the store.
    victim = join(work, 'victim');
    await mkdir(victim);
    const [key] = await readdir(join(base, 'phase-one'));
    await copyFile(join(base, 'phase-one', key!, 'model', 'weights.bin'), join(victim, 'weights.bin'));
    victimSha = sha256(await readFile(join(victim, 'weights.bin')));
  }, 600_000);

  const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

  /**
   * A copy of the base store whose phase-one model.json names other weights paths, with
   * the manifest updated to match (file hash and digest), as someone with write access
   * to the store could do: every check the store makes on its own still passes.
   */
  async function storeWithEditedModel(name: string, paths: string[], prepare: (modelDir: string) => Promise<void> = async () => {}): Promise<string> {
    const store = join(work, name);
    await cp(base, store, { recursive: true, verbatimSymlinks: true });
    const [key] = await readdir(join(store, 'phase-one'));
    const artifact = join(store, 'phase-one', key!);
    const modelJson = JSON.parse(await readFile(join(artifact, 'model', 'model.json'), 'utf8'));
    modelJson.weightsManifest[0].paths = paths;
    const bytes = Buffer.from(JSON.stringify(modelJson));
    await writeFile(join(artifact, 'model', 'model.json'), bytes);
    await prepare(join(artifact, 'model'));
    const manifest = JSON.parse(await readFile(join(artifact, 'manifest.json'), 'utf8'));
    const entry = manifest.files.find((f: { path: string }) => f.path === 'model/model.json');
    Object.assign(entry, { bytes: bytes.length, sha256: sha256(bytes) });
    const { digest: _old, ...rest } = manifest;
    manifest.digest = createHash('sha256').update(canonicalJson(rest), 'utf8').digest('hex');
    await writeFile(join(artifact, 'manifest.json'), JSON.stringify(manifest, null, 2));
    return store;
  }

  /** `graft run transplant` on the edited store: refused, naming the path, nothing published, the victim untouched. */
  async function expectRefused(store: string, fragment: string): Promise<void> {
    const result = await graftWithPeakMemory(['run', 'transplant', '--config', 'tiny.json', '--artifacts', store, '--no-rebuild'], work);
    expect(result.code, result.stderr.slice(-2000)).not.toBe(0);
    expect(errorLine(result)).toContain(fragment);
    expect(await ls(join(store, 'transplant'))).toEqual([]);
    expect(sha256(await readFile(join(victim, 'weights.bin')))).toBe(victimSha);
    // The refusal comes before any weights are read: far below 150 × 8.7 MB.
    expect(result.peakBytes).toBeLessThan(700 * 2 ** 20);
  }

  it('a weights path through a linked directory to outside the store is not read', async () => {
    const store = await storeWithEditedModel('linked-dir-store', ['outside/weights.bin'], (modelDir) => symlink(victim, join(modelDir, 'outside')));
    await expectRefused(store, 'outside');
  });

  it('a weights file the manifest does not list is not read, even inside the artifact', async () => {
    const store = await storeWithEditedModel('stray-store', ['stray.bin'], (modelDir) => copyFile(join(victim, 'weights.bin'), join(modelDir, 'stray.bin')));
    await expectRefused(store, 'names the weights file stray.bin, which is not one of the artifact\'s files');
  });

  it('weights.bin listed 150 times is refused before it is read even once', async () => {
    const store = await storeWithEditedModel('repeated-store', new Array(150).fill('weights.bin'));
    await expectRefused(store, 'names the weights file weights.bin more than once');
  });
});

describe('labels outside the declared classes (case 15)', { timeout: 300_000 }, () => {
  it('a label byte of 200 is an error naming the file and the fix; declared, it is ingested and the log names every class', async () => {
    const source = join(work, 'label200');
    await writeMnistSlice(source);
    const labelsFile = join(source, 'train-labels-idx1-ubyte');
    const labels = await readFile(labelsFile);
    labels[8 + 17] = 200; // row 17, after the 8-byte header
    await writeFile(labelsFile, labels);
    const config = await ingestConfig('label200', source, { validationSize: 100 });
    const store = join(work, 'label200-store');

    const refused = await graft(['run', 'ingest', '--config', config, '--artifacts', store], work);
    expect(refused.code, refused.stderr.slice(-2000)).toBe(2);
    const line = errorLine(refused);
    expect(line).toContain(`${labelsFile} holds 1 label(s) outside 0-9 (the first, 200, at row 17; the largest 200)`);
    expect(line).toContain('--set ingest.numClasses=201');
    expect(await ls(join(store, 'ingest'))).toEqual([]);

    const declared = await graft(['run', 'ingest', '--config', config, '--artifacts', store, '--set', 'ingest.numClasses=201'], work);
    expect(declared.code, declared.stderr.slice(-2000)).toBe(0);
    const record = logRecords(declared.stderr).find((r) => typeof r.msg === 'string' && r.msg.startsWith('ingested IDX files'))!;
    expect(record.classes['200']).toBe(1);
    expect(Object.keys(record.classes)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '200']);
    expect(Object.values(record.classes as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(800);
    expect(record.msg).toContain('ingested IDX files: 11 of 201 classes (0: ');
  });
});
