import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, normalize } from 'node:path';
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

/** Reads a model written by saveModel (or any tfjs LayersModel directory with a single weights manifest). */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  const jsonPath = join(dir, MODEL_JSON);
  let modelJson: tf.io.ModelJSON;
  try {
    modelJson = JSON.parse(await readFile(jsonPath, 'utf8')) as tf.io.ModelJSON;
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new GraftError(MODEL_ERROR_CODES.invalid, `${jsonPath} is not valid JSON: ${error.message}`, { cause: error });
    }
    throw new GraftError(MODEL_ERROR_CODES.notFound, `cannot read the model: ${describeSystemError(error, jsonPath)}`, { cause: error });
  }
  if (typeof modelJson !== 'object' || modelJson === null || modelJson.modelTopology == null || !Array.isArray(modelJson.weightsManifest)) {
    throw new GraftError(MODEL_ERROR_CODES.invalid, `${jsonPath} is not a tfjs LayersModel (needs modelTopology and weightsManifest)`);
  }
  const handler: tf.io.IOHandler = {
    load: () =>
      tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const path of group.paths) {
            if (isAbsolute(path) || normalize(path).startsWith('..')) {
              throw new GraftError(MODEL_ERROR_CODES.invalid, `${jsonPath} names a weights file outside its directory: ${path}`);
            }
            const file = join(dir, path);
            try {
              const bytes = await readFile(file);
              buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
            } catch (error) {
              throw new GraftError(MODEL_ERROR_CODES.notFound, `cannot read the model weights: ${describeSystemError(error, file)}`, { cause: error });
            }
          }
        }
        return [specs, tf.io.concatenateArrayBuffers(buffers)];
      }),
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

export function readModelArtifact(artifactPath: string): Promise<tf.LayersModel> {
  return loadModel(modelDirOf(artifactPath));
}

export function writeModelArtifact(artifactPath: string, model: tf.LayersModel, metadata?: Record<string, unknown>): Promise<void> {
  return saveModel(model, modelDirOf(artifactPath), metadata);
}
