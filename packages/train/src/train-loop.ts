import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GraftError, Rng, isGraftError } from '@graft/core';
import type { ProgressReporter, RngState } from '@graft/core';
import type { CurvePoint } from '@graft/core';
import {
  VARIABLE_ORDER,
  assignValues,
  convPool,
  crossEntropy,
  drawDropoutMasks,
  fc1Features,
  features,
  gatherBatch,
  headLogits,
  inputTensor,
  networkVariables,
  specFromModel,
} from '@graft/model';
import type { Batch, DropoutMasks, LabelledImages, ModelLogger, NetworkVariables } from '@graft/model';
import { readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import type { CheckpointTensor } from './checkpoint.ts';
import { createAdam, sumOfSquares } from './optimizer.ts';
import type { TrainingOptimizer } from './optimizer.ts';
import { ADAM_CONSTANTS } from './recipes.ts';
import { openCurveEvaluator } from './curve-evaluation.ts';
import type { EvaluationMode } from './curve-evaluation.ts';
import { TRAIN_ERROR_CODES } from './error-codes.ts';
import { PooledFeatureCache, baseCacheSettings } from './frozen-base.ts';

type VariableName = keyof NetworkVariables;


/** How an epoch is cut into batches. `batches` may draw from rng (shuffling). */
export interface BatchPlan {
  batchesPerEpoch: number;
  batches(epoch: number, rng: Rng): Batch[];
}

export interface TrainOptions {
  model: tf.LayersModel;
  train: LabelledImages;
  validation: LabelledImages;
  epochs: number;
  plan: BatchPlan;
  /** Draws dropout masks and whatever the plan draws; its state is checkpointed. */
  rng: Rng;
  learningRate: number;
  l2: number;
  keepProb: number;
  evalEvery: number;
  /**
   * Where the curve's evaluations run: 'worker' on a worker thread while training goes on
   * (same numbers, same order), 'inline' on the training thread between steps. 'auto'
   * (default): the worker when there is a second core (curve-evaluation.ts).
   */
  evaluation?: EvaluationMode;
  /**
   * 'head': only the head's kernel and bias change; the base runs outside the gradient
   * tape (dropout still on, as in the seed) which skips its backward pass entirely.
   */
  trainable: 'all' | 'head';
  /** Kernels in the L2 term (the seed: conv, fc1, head in phase one; head in phase two). */
  regularise: ReadonlyArray<keyof NetworkVariables>;
  checkpoint?: {
    dir: string;
    /** False: ignore any existing checkpoint (it is overwritten at the next epoch end). */
    resume: boolean;
    /** Identifies params and inputs; a checkpoint with another fingerprint is not used. */
    fingerprint: string;
  };
  logger?: ModelLogger;
  progress?: ProgressReporter;
  progressLabel?: string;
  /** Called after each epoch's checkpoint is written (tests stop a run here to simulate a crash). */
  onEpochEnd?(epoch: number): void | Promise<void>;
}

export interface TrainResult {
  curve: CurvePoint[];
  steps: number;
  /** Mean wall time of a training step (batch assembly, dropout masks, forward, backward, update); evaluation excluded. */
  msPerStep: number;
  /** Wall time of the whole loop including evaluations, summed over resumed sessions. */
  durationMs: number;
  /** The epoch a checkpoint resumed after, or null for a fresh run. */
  resumedAfterEpoch: number | null;
}

interface LoopState {
  epoch: number;
  steps: number;
  curve: CurvePoint[];
  trainMs: number;
  elapsedMs: number;
  rng: { s: RngState; spareNormal: number | null };
  backend: string;
}

export const CHECKPOINT_FILE = 'training.ckpt';

/**
 * The training loop shared by both phases: epochs x batches, a custom step (not
 * model.fit) so dropout comes from our Rng and the exact state can be checkpointed,
 * evaluation every `evalEvery` batches, a checkpoint at every epoch end.
 * The model's weights are updated in place.
 */
export async function trainLoop(options: TrainOptions): Promise<TrainResult> {
  const { model, train, validation, plan, learningRate, l2, keepProb, evalEvery, logger, progress } = options;
  const spec = specFromModel(model);
  const vars = networkVariables(model);
  const trained: readonly VariableName[] = options.trainable === 'head' ? ['headKernel', 'headBias'] : VARIABLE_ORDER;
  const regularised = options.regularise.map((n) => vars[n]);
  let rng = options.rng;
  // The L2 term stays out of the tape: its gradient, l2/K * w for each of the K regularised
  // kernels, is added by the optimizer, and its value is computed beside the step.
  const decay = trained.map((n) => (options.regularise.includes(n) ? l2 / options.regularise.length : 0));
  const optimizer = createAdam(
    trained.map((n) => vars[n]),
    { learningRate, ...ADAM_CONSTANTS },
    { decay },
  );

  // The frozen base's conv+pool outputs per image, computed once (frozen-base.ts).
  const cacheSettings = baseCacheSettings();
  const frozenBase = options.trainable === 'head' && cacheSettings.enabled;
  const baseCache = frozenBase ? new PooledFeatureCache(spec, train, cacheSettings.maxBytes) : null;
  if (baseCache) {
    logger?.info(
      { cachedImages: baseCache.capacity, trainImages: train.length, maxBytes: cacheSettings.maxBytes },
      `frozen base: conv+pool outputs of ${baseCache.capacity} of ${train.length} training images are kept after their first batch`,
    );
  }

  const state: LoopState = { epoch: 0, steps: 0, curve: [], trainMs: 0, elapsedMs: 0, rng: rng.getState(), backend: tf.getBackend() };
  let resumedAfterEpoch: number | null = null;
  const checkpointPath = options.checkpoint ? join(options.checkpoint.dir, CHECKPOINT_FILE) : null;
  const evaluator = openCurveEvaluator({
    mode: options.evaluation,
    vars,
    spec,
    validation,
    trained,
    frozenBase,
    record(point, msPerStep) {
      state.curve.push(point);
      logger?.info(
        { ...point, msPerStep },
        `epoch ${point.epoch} batch ${point.batch}: loss ${point.loss.toFixed(4)} train ${point.batchAccuracy.toFixed(4)} val ${point.valAccuracy.toFixed(4)}`,
      );
    },
  });

  try {
    if (options.checkpoint?.resume && checkpointPath) {
      const restored = await restore(checkpointPath, options.checkpoint.fingerprint, vars, trained, optimizer, logger);
      if (restored) {
        Object.assign(state, restored);
        rng = Rng.fromState(restored.rng);
        resumedAfterEpoch = state.epoch;
        if (restored.backend !== tf.getBackend()) {
          logger?.warn(
            { checkpointBackend: restored.backend, backend: tf.getBackend() },
            'resuming a checkpoint written on another backend: results will not be bit-identical to an uninterrupted run',
          );
        }
        logger?.info({ epoch: state.epoch, steps: state.steps, checkpoint: checkpointPath }, `resuming after epoch ${state.epoch}`);
      }
    }

    progress?.start(options.progressLabel ?? 'training', options.epochs * plan.batchesPerEpoch);
    if (state.steps > 0) progress?.update(state.steps, lastFields(state));
    const sessionStart = performance.now();
    const elapsedBefore = state.elapsedMs;

    const stepBuffers: { x?: Float32Array; masks?: DropoutMasks | null } = {};
    for (let epoch = state.epoch + 1; epoch <= options.epochs; epoch++) {
      const batches = plan.batches(epoch, rng);
      for (let b = 0; b < batches.length; b++) {
        const t0 = performance.now();
        // The batch and mask arrays of the step before are refilled: every tensor made from
        // them was disposed with that step, and ~2 MB of fresh arrays a step drove the GC.
        const { x, y, size } = gatherBatch(train, batches[b]!, stepBuffers.x);
        const masks = drawDropoutMasks(rng, size, spec, keepProb, stepBuffers.masks);
        stepBuffers.x = x;
        stepBuffers.masks = masks;
        const yT = tf.tensor1d(y, 'int32');
        // Before the update: the loss of the weights this step starts from.
        const penalty = regularised.length === 0 ? 0 : (l2 * sumOfSquares(regularised)) / 2 / regularised.length;
        let lossValue: number;
        try {
          const lossT = tf.tidy(() => {
            if (options.trainable === 'head') {
              // Outside minimize(): no tape, so no backward pass through the frozen base.
              const pooled = baseCache ? baseCache.pooled(vars, batches[b]!, x) : convPool(vars, inputTensor(x, size, spec));
              const feats = fc1Features(vars, pooled, spec, masks);
              return optimizer.minimize(() => crossEntropy(headLogits(vars, feats), yT));
            }
            const xT = inputTensor(x, size, spec);
            return optimizer.minimize(() => crossEntropy(headLogits(vars, features(vars, xT, spec, masks)), yT));
          });
          lossValue = Math.fround(lossT.dataSync()[0]! + penalty);
          lossT.dispose();
        } finally {
          yT.dispose();
        }
        state.trainMs += performance.now() - t0;
        state.steps++;
        if (!Number.isFinite(lossValue)) {
          throw new GraftError(
            TRAIN_ERROR_CODES.nonFiniteLoss,
            `training loss became ${lossValue} at epoch ${epoch}, batch ${b + 1} (step ${state.steps}); ` +
              'nothing was published. Lower learningRate, check the input data, or try another seed.',
          );
        }
        if ((b + 1) % evalEvery === 0) {
          await evaluator.submit({ epoch, batch: b + 1, step: state.steps, loss: lossValue }, { x, y, size }, round(state.trainMs / state.steps, 2));
        }
        if (progress) {
          const step = state.steps;
          const batch = b + 1;
          // After the pending points are recorded, so the progress records (and their val
          // field) interleave with the curve's log lines exactly as with inline evaluation.
          evaluator.inOrder(() => progress.update(step, { epoch, batch, ...valField(state) }));
        }
      }
      // The checkpoint carries the curve so far: every point of this epoch must be in it.
      await evaluator.drain();
      state.epoch = epoch;
      state.elapsedMs = elapsedBefore + (performance.now() - sessionStart);
      state.rng = rng.getState();
      if (checkpointPath) {
        await writeCheckpoint(checkpointPath, {
          fingerprint: options.checkpoint!.fingerprint,
          state,
          tensors: stateTensors(vars, trained, optimizer),
        });
      }
      await options.onEpochEnd?.(epoch);
    }
    await evaluator.drain();
    state.elapsedMs = elapsedBefore + (performance.now() - sessionStart);
    if (baseCache) {
      logger?.info(
        { cachedImages: baseCache.size, reused: baseCache.hits, computed: baseCache.misses },
        `frozen base: conv+pool reused for ${baseCache.hits} images, computed for ${baseCache.misses}`,
      );
    }
    return {
      curve: state.curve,
      steps: state.steps,
      msPerStep: state.steps === 0 ? 0 : state.trainMs / state.steps,
      durationMs: state.elapsedMs,
      resumedAfterEpoch,
    };
  } finally {
    optimizer.dispose();
    await evaluator.close();
  }
}

function valField(state: LoopState): Record<string, number> {
  const last = state.curve[state.curve.length - 1];
  return last ? { val: round(last.valAccuracy, 4) } : {};
}

function lastFields(state: LoopState): Record<string, number> {
  const last = state.curve[state.curve.length - 1];
  return { epoch: state.epoch, ...(last ? { batch: last.batch } : {}), ...valField(state) };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------------------------
// Checkpoint state: weights, and Adam's moments, step count and running beta powers
// (the same layout whichever implementation wrote it, so a checkpoint resumes on another
// backend, if not bit-identically).

function stateTensors(vars: NetworkVariables, trained: readonly VariableName[], optimizer: TrainingOptimizer): CheckpointTensor[] {
  const out: CheckpointTensor[] = VARIABLE_ORDER.map((name) => ({
    name: `weights/${name}`,
    dtype: 'float32',
    shape: vars[name].shape,
    data: vars[name].dataSync().slice() as Float32Array,
  }));
  const adam = optimizer.getState();
  trained.forEach((name, i) => {
    out.push({ name: `adam/m/${name}`, dtype: 'float32', shape: vars[name].shape, data: adam.m[i]! });
    out.push({ name: `adam/v/${name}`, dtype: 'float32', shape: vars[name].shape, data: adam.v[i]! });
  });
  out.push({ name: 'adam/betaPowers', dtype: 'float32', shape: [2], data: new Float32Array([adam.accBeta1, adam.accBeta2]) });
  out.push({ name: 'adam/iterations', dtype: 'int32', shape: [], data: new Int32Array([adam.iterations]) });
  return out;
}

/** Restores weights and optimizer state from the checkpoint, or changes nothing and returns null. */
async function restore(
  path: string,
  fingerprint: string,
  vars: NetworkVariables,
  trained: readonly VariableName[],
  optimizer: TrainingOptimizer,
  logger: ModelLogger | undefined,
): Promise<LoopState | null> {
  let checkpoint;
  try {
    checkpoint = await readCheckpoint<LoopState>(path);
  } catch (error) {
    if (!isGraftError(error)) throw error;
    logger?.warn({ checkpoint: path, error: error.message }, 'ignoring an unusable checkpoint; training from the start');
    return null;
  }
  if (!checkpoint) return null;
  if (checkpoint.fingerprint !== fingerprint) {
    logger?.warn({ checkpoint: path }, 'ignoring a checkpoint of a different run (params or inputs differ); training from the start');
    return null;
  }
  const byName = new Map(checkpoint.tensors.map((t) => [t.name, t]));
  const fitting = (name: string, size: number): Float32Array | null => {
    const t = byName.get(name);
    return t && t.dtype === 'float32' && t.data.length === size ? (t.data as Float32Array) : null;
  };
  const weights = VARIABLE_ORDER.map((name) => fitting(`weights/${name}`, vars[name].size));
  const m = trained.map((name) => fitting(`adam/m/${name}`, vars[name].size));
  const v = trained.map((name) => fitting(`adam/v/${name}`, vars[name].size));
  const powers = fitting('adam/betaPowers', 2);
  const iterations = byName.get('adam/iterations');
  if (weights.includes(null) || m.includes(null) || v.includes(null) || !powers || iterations?.dtype !== 'int32') {
    logger?.warn({ checkpoint: path }, 'ignoring a checkpoint whose weights or optimizer state do not fit this model; training from the start');
    return null;
  }
  VARIABLE_ORDER.forEach((name, i) => assignValues(vars[name], weights[i]!));
  optimizer.setState({
    iterations: iterations.data[0]!,
    accBeta1: powers[0]!,
    accBeta2: powers[1]!,
    m: m as Float32Array[],
    v: v as Float32Array[],
  });
  return checkpoint.state;
}
