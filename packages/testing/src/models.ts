/**
 * Model artifacts for the tests of stages that consume the `model` kind (transplant,
 * phase-two), made through the model format and the training library rather than by
 * running another stage: stage packages never depend on each other, not even in tests.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '@graft/core';
import type { InputArtifact } from '@graft/core';
import { readSplitData, readSplitInfo } from '@graft/data';
import type { Subset } from '@graft/data';
import { SEED_NETWORK, assignValues, buildNetwork, initBackend, mapLabels, networkVariables, readModelArtifact, readWeights, specFromModel, writeModelArtifact } from '@graft/model';
import { ALL_LAYERS, contiguousPlan, trainLoop } from '@graft/train';
import { inputArtifact } from './stages.ts';

let counter = 0;

export interface TrainedModelOptions {
  /** The split subset to train on (its classes set the head width); default 'phase-one'. */
  dataset?: Subset;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  maxBatchesPerEpoch?: number;
  seed?: number;
}

/**
 * A model trained from scratch on a split artifact's subset, every layer, the seed's
 * batching and loss (the ALL_LAYERS recipe), written as a model artifact under `root`.
 * On the wasm backend, as the stage tests run.
 */
export async function trainedModelArtifact(root: string, split: InputArtifact, options: TrainedModelOptions = {}): Promise<InputArtifact> {
  const { dataset = 'phase-one', epochs = 1, batchSize = 20, learningRate = 1e-3, maxBatchesPerEpoch, seed = 0 } = options;
  await initBackend('wasm');
  const info = await readSplitInfo(split.path);
  const [classMap, classLabels] = dataset === 'phase-one' ? [info.classMap, info.phaseOneClasses] : [info.phaseTwoClassMap, info.phaseTwoClasses];
  const load = async (part: 'train' | 'validation') => mapLabels(await readSplitData(split.path, dataset, part), classMap, `${dataset} ${part}`);
  const [train, validation] = [await load('train'), await load('validation')];
  const rng = new Rng(seed);
  const model = buildNetwork({ ...SEED_NETWORK, rows: train.rows, cols: train.cols, numClasses: classLabels.length }, rng);
  try {
    const plan = contiguousPlan(train.length, batchSize, maxBatchesPerEpoch);
    // No curve points (evalEvery past the last step): only the weights matter here.
    await trainLoop({ ...ALL_LAYERS, model, train, validation, epochs, plan, rng, learningRate, l2: 0.001, keepProb: 0.7, evalEvery: epochs * plan.batchesPerEpoch + 1 });
    const dir = join(root, `trained-model-${counter++}`);
    await mkdir(dir, { recursive: true });
    await writeModelArtifact(dir, model, { graft: { stage: 'phase-one', dataset, classLabels } });
    return inputArtifact(dir, 'phase-one');
  } finally {
    model.dispose();
  }
}

/**
 * The model of `source` with a fresh head of `numClasses` units: the base (conv, fc1)
 * copied bit for bit, the head drawn from `seed` as a new network's would be. A model input
 * for head-only training, without running the transplant stage.
 */
export async function widenedHeadArtifact(root: string, source: InputArtifact, numClasses: number, seed = 0): Promise<InputArtifact> {
  const old = await readModelArtifact(source);
  const widened = buildNetwork({ ...specFromModel(old), numClasses }, new Rng(seed));
  try {
    const base = readWeights(networkVariables(old));
    const vars = networkVariables(widened);
    for (const name of ['convKernel', 'convBias', 'fc1Kernel', 'fc1Bias'] as const) assignValues(vars[name], base[name]);
    const dir = join(root, `widened-model-${counter++}`);
    await mkdir(dir, { recursive: true });
    await writeModelArtifact(dir, widened, { graft: { stage: 'transplant' } });
    return inputArtifact(dir, 'transplant');
  } finally {
    old.dispose();
    widened.dispose();
  }
}
