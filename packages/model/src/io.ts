import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GraftError, describeSystemError } from '@graft/core';
import { MODEL_ERROR_CODES } from './error-codes.ts';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/**
 * Writes `dir/model.json` + `dir/weights.bin` in the tfjs LayersModel format (what
 * tfjs-node's file:// handler writes), through a save handler of our own so it works
 * on every backend without tfjs-node. `metadata` lands in userDefinedMetadata.
 */
export async function saveModel(model: tf.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<void> {
  if (metadata) model.setUserDefinedMetadata(metadata);
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology!,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      const jsonPath = join(dir, MODEL_JSON);
      const binPath = join(dir, WEIGHTS_BIN);
      try {
        await mkdir(dir, { recursive: true });
        await writeFile(binPath, new Uint8Array(weightData));
        await writeFile(jsonPath, `${JSON.stringify(modelJson, null, 2)}\n`);
      } catch (error) {
        throw new GraftError(MODEL_ERROR_CODES.writeFailed, `could not save the model: ${describeSystemError(error, dir)}`, { cause: error });
      }
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

/**
 * The files a model may be read from: paths relative to the model directory ('/'-separated)
 * and their sizes in bytes. In a stage, what the input artifact's manifest lists (and the
 * runner verified by sha256) under the model directory: see modelFilesOf.
 */
export type ModelFiles = ReadonlyMap<string, number>;

/** The entries of an artifact manifest's file list under `subdir` (e.g. 'model'), relative to it. */
export function modelFilesOf(files: ReadonlyArray<{ path: string; bytes: number }>, subdir: string): ModelFiles {
  const prefix = `${subdir.replace(/\/+$/, '')}/`;
  return new Map(files.filter((f) => f.path.startsWith(prefix)).map((f) => [f.path.slice(prefix.length), f.bytes]));
}

/**
 * The regular files under a model directory outside any store (a test's output, an export),
 * for loadModel. Symbolic links are left out, so they are refused like unlisted files.
 */
export async function listModelFiles(dir: string): Promise<ModelFiles> {
  const files = new Map<string, number>();
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/');
    files.set(path, (await lstat(join(dir, path))).size);
  }
  return files;
}

/** Bytes per stored element of a weight (its quantized type when quantized). */
const STORED_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

const invalid = (message: string) => new GraftError(MODEL_ERROR_CODES.invalid, `${message}. Rebuild the artifact that holds it (graft run <entry> --force).`);

/** A path as model.json may name a weights file: relative, inside the model directory, '/'-separated. */
function isPlainRelativePath(path: string): boolean {
  return path !== '' && !path.startsWith('/') && !path.includes('\\') && path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/**
 * Reads exactly `bytes` bytes of a file that must be a regular file, not a link: every
 * directory on the way from `dir` is lstat-checked and the file is opened with
 * O_NOFOLLOW, so nothing outside the model directory is read through a link. A size other
 * than the listed one means the file changed after it was verified.
 */
async function readListedFile(dir: string, path: string, bytes: number): Promise<Uint8Array> {
  const parts = path.split('/');
  for (let i = 0; i < parts.length - 1; i++) {
    const sub = join(dir, ...parts.slice(0, i + 1));
    const info = await lstat(sub).catch((error: unknown) => {
      throw new GraftError(MODEL_ERROR_CODES.notFound, `cannot read the model: ${describeSystemError(error, sub)}`, { cause: error });
    });
    if (!info.isDirectory()) throw invalid(`${sub} is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; a model is read only from its own directory`);
  }
  const file = join(dir, ...parts);
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw invalid(`${file} is a symbolic link; a model is read only from its own files`);
    throw new GraftError(MODEL_ERROR_CODES.notFound, `cannot read the model: ${describeSystemError(error, file)}`, { cause: error });
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw invalid(`${file} is not a regular file`);
    if (info.size !== bytes) throw invalid(`${file} is ${info.size} bytes, but the artifact manifest lists ${bytes}: it changed after the artifact was verified`);
    const data = new Uint8Array(bytes);
    let filled = 0;
    while (filled < bytes) {
      const { bytesRead } = await handle.read(data, filled, bytes - filled, filled);
      if (bytesRead === 0) throw invalid(`${file} ended after ${filled} of its ${bytes} bytes`);
      filled += bytesRead;
    }
    return data;
  } finally {
    await handle.close();
  }
}

/** Total stored bytes of a weights manifest group's specs; throws on a spec that is not one. */
function specBytes(weights: unknown, jsonPath: string): number {
  if (!Array.isArray(weights)) throw invalid(`${jsonPath}: a weightsManifest group has no weights list`);
  let total = 0;
  for (const spec of weights as Array<Record<string, unknown>>) {
    const name = typeof spec?.name === 'string' ? spec.name : '(unnamed)';
    const shape = spec?.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) throw invalid(`${jsonPath}: weight ${name} has no valid shape`);
    const quantization = spec.quantization as { dtype?: unknown } | undefined;
    const dtype = String(quantization?.dtype ?? spec.dtype);
    const size = STORED_BYTES[dtype];
    if (!Object.hasOwn(STORED_BYTES, dtype) || size === undefined) throw invalid(`${jsonPath}: weight ${name} has unknown dtype ${dtype}`);
    total += (shape as number[]).reduce((a, b) => a * b, 1) * size;
  }
  return total;
}

/**
 * Reads a model written by saveModel (any tfjs LayersModel directory), from `files` only:
 * model.json and every weights path it names must be listed there, each read once, as a
 * regular file of the listed size, never through a symbolic link. The weights files must
 * hold exactly the bytes the weight specs need, checked before any is read, so memory is
 * bounded by the model itself: a path listed twice (150 × weights.bin took 2.6 GiB) or a
 * surplus file is an error, and nothing outside the artifact is ever read.
 */
export async function loadModel(dir: string, files: ModelFiles): Promise<tf.LayersModel> {
  const jsonPath = join(dir, MODEL_JSON);
  const jsonBytes = files.get(MODEL_JSON);
  if (jsonBytes === undefined) {
    throw new GraftError(MODEL_ERROR_CODES.notFound, `cannot read the model: ${jsonPath} does not exist in the artifact (its manifest lists no such file)`);
  }
  let modelJson: tf.io.ModelJSON;
  try {
    modelJson = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await readListedFile(dir, MODEL_JSON, jsonBytes))) as tf.io.ModelJSON;
  } catch (error) {
    if (error instanceof GraftError) throw error;
    throw new GraftError(MODEL_ERROR_CODES.invalid, `${jsonPath} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof modelJson !== 'object' || modelJson === null || modelJson.modelTopology == null || !Array.isArray(modelJson.weightsManifest)) {
    throw new GraftError(MODEL_ERROR_CODES.invalid, `${jsonPath} is not a tfjs LayersModel (needs modelTopology and weightsManifest)`);
  }
  // Everything about the weights files is checked before a byte of them is read.
  const paths: string[] = [];
  let needed = 0;
  for (const group of modelJson.weightsManifest as unknown[]) {
    const { paths: groupPaths, weights } = (group ?? {}) as { paths?: unknown; weights?: unknown };
    if (!Array.isArray(groupPaths)) throw invalid(`${jsonPath}: a weightsManifest group has no paths list`);
    for (const path of groupPaths) {
      if (typeof path !== 'string' || !isPlainRelativePath(path)) throw invalid(`${jsonPath} names a weights file outside its directory: ${String(path)}`);
      if (paths.includes(path)) throw invalid(`${jsonPath} names the weights file ${path} more than once`);
      if (path === MODEL_JSON || !files.has(path)) throw invalid(`${jsonPath} names the weights file ${path}, which is not one of the artifact's files`);
      paths.push(path);
    }
    needed += specBytes(weights, jsonPath);
  }
  const listed = paths.reduce((sum, path) => sum + files.get(path)!, 0);
  if (listed !== needed) {
    throw invalid(`${jsonPath}: its weight specs need ${needed} bytes, but the weights files it names (${paths.join(', ') || 'none'}) hold ${listed}`);
  }
  const weightData = new Uint8Array(needed);
  let offset = 0;
  for (const path of paths) {
    const bytes = await readListedFile(dir, path, files.get(path)!);
    weightData.set(bytes, offset);
    offset += bytes.length;
  }
  const handler: tf.io.IOHandler = {
    load: () =>
      tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => [manifest.flatMap((group) => group.weights), weightData.buffer as ArrayBuffer]),
  };
  try {
    return await tf.loadLayersModel(handler);
  } catch (error) {
    if (error instanceof GraftError) throw error;
    throw new GraftError(MODEL_ERROR_CODES.invalid, `cannot load the model in ${dir}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

/**
 * The `model` artifact kind (what phase-one, transplant and phase-two produce, what
 * transplant and phase-two consume): the network in `model/` of the artifact, in the
 * tfjs LayersModel format above. Stages read and write model artifacts only through these.
 */
export const MODEL_DIR = 'model';

/** Where a model artifact keeps its model directory. */
export function modelDirOf(artifactPath: string): string {
  return join(artifactPath, MODEL_DIR);
}

/**
 * Reads the model of an input artifact from the files its manifest lists (and the runner
 * verified): nothing else in the artifact directory, and nothing outside it, is read.
 */
export function readModelArtifact(artifact: { path: string; manifest: { files: ReadonlyArray<{ path: string; bytes: number }> } }): Promise<tf.LayersModel> {
  return loadModel(modelDirOf(artifact.path), modelFilesOf(artifact.manifest.files, MODEL_DIR));
}

export function writeModelArtifact(artifactPath: string, model: tf.LayersModel, metadata?: Record<string, unknown>): Promise<void> {
  return saveModel(model, modelDirOf(artifactPath), metadata);
}
