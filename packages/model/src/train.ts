import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GraftError, Rng, isGraftError } from '@graft/core';
import type { ProgressReporter, RngState } from '@graft/core';
import { readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import type { CheckpointTensor } from './checkpoint.ts';
import { accuracyOf, accuracyOn } from './evaluate.ts';
import { drawDropoutMasks, features, gatherBatch, headLogits, inputTensor, trainingLoss } from './forward.ts';
import type { Batch, LabelledImages } from './forward.ts';
import type { ModelLogger } from './logger.ts';
import { VARIABLE_ORDER, assignValues, networkVariables, specFromModel } from './network.ts';
import type { NetworkSpec, NetworkVariables } from './network.ts';

/** One row of the learning curve, recorded every `evalEvery` batches as the seed printed it. */
export interface CurvePoint {
  /** 1-based, as the seed printed it. */
  epoch: number;
  /** 1-based batch within the epoch. */
  batch: number;
  /** 1-based global training step. */
  step: number;
  /** Training loss of that step (with dropout). */
  loss: number;
  /** Accuracy on that step's batch after the update, dropout off (the seed's "Train"). */
  batchAccuracy: number;
  /** Accuracy on the whole validation set, dropout off. */
  valAccuracy: number;
}

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
  const varList = options.trainable === 'head' ? [vars.headKernel, vars.headBias] : VARIABLE_ORDER.map((n) => vars[n]);
  const regularised = options.regularise.map((n) => vars[n]);
  let rng = options.rng;
  let optimizer: tf.Optimizer = tf.train.adam(learningRate, 0.9, 0.999, 1e-8);

  const state: LoopState = { epoch: 0, steps: 0, curve: [], trainMs: 0, elapsedMs: 0, rng: rng.getState(), backend: tf.getBackend() };
  let resumedAfterEpoch: number | null = null;
  const checkpointPath = options.checkpoint ? join(options.checkpoint.dir, CHECKPOINT_FILE) : null;

  try {
    if (options.checkpoint?.resume && checkpointPath) {
      const restored = await restore(checkpointPath, options.checkpoint.fingerprint, vars, learningRate, logger);
      if (restored) {
        optimizer.dispose();
        optimizer = restored.optimizer;
        Object.assign(state, restored.state);
        rng = Rng.fromState(restored.state.rng);
        resumedAfterEpoch = state.epoch;
        if (restored.state.backend !== tf.getBackend()) {
          logger?.warn(
            { checkpointBackend: restored.state.backend, backend: tf.getBackend() },
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

    for (let epoch = state.epoch + 1; epoch <= options.epochs; epoch++) {
      const batches = plan.batches(epoch, rng);
      for (let b = 0; b < batches.length; b++) {
        const t0 = performance.now();
        const { x, y, size } = gatherBatch(train, batches[b]!);
        const masks = drawDropoutMasks(rng, size, spec, keepProb);
        const xT = inputTensor(x, size, spec);
        const yT = tf.tensor1d(y, 'int32');
        let lossValue: number;
        try {
          const lossT = tf.tidy(() => {
            if (options.trainable === 'head') {
              // Outside minimize(): no tape, so no backward pass through the frozen base.
              const feats = features(vars, xT, spec, masks);
              return optimizer.minimize(() => trainingLoss(headLogits(vars, feats), yT, regularised, l2), true, varList)!;
            }
            return optimizer.minimize(
              () => trainingLoss(headLogits(vars, features(vars, xT, spec, masks)), yT, regularised, l2),
              true,
              varList,
            )!;
          });
          lossValue = lossT.dataSync()[0]!;
          lossT.dispose();
        } finally {
          xT.dispose();
          yT.dispose();
        }
        state.trainMs += performance.now() - t0;
        state.steps++;
        if (!Number.isFinite(lossValue)) {
          throw new GraftError(
            'NON_FINITE_LOSS',
            `training loss became ${lossValue} at epoch ${epoch}, batch ${b + 1} (step ${state.steps}); ` +
              'nothing was published. Lower learningRate, check the input data, or try another seed.',
          );
        }
        if ((b + 1) % evalEvery === 0) {
          const point: CurvePoint = {
            epoch,
            batch: b + 1,
            step: state.steps,
            loss: lossValue,
            batchAccuracy: batchAccuracy(vars, spec, x, y, size),
            valAccuracy: accuracyOn(vars, spec, validation),
          };
          state.curve.push(point);
          logger?.info(
            { ...point, msPerStep: round(state.trainMs / state.steps, 2) },
            `epoch ${epoch} batch ${b + 1}: loss ${point.loss.toFixed(4)} train ${point.batchAccuracy.toFixed(4)} val ${point.valAccuracy.toFixed(4)}`,
          );
        }
        progress?.update(state.steps, { epoch, batch: b + 1, ...valField(state) });
      }
      state.epoch = epoch;
      state.elapsedMs = elapsedBefore + (performance.now() - sessionStart);
      state.rng = rng.getState();
      if (checkpointPath) {
        await writeCheckpoint(checkpointPath, {
          fingerprint: options.checkpoint!.fingerprint,
          state,
          tensors: await stateTensors(vars, optimizer),
        });
      }
      await options.onEpochEnd?.(epoch);
    }
    state.elapsedMs = elapsedBefore + (performance.now() - sessionStart);
    return {
      curve: state.curve,
      steps: state.steps,
      msPerStep: state.steps === 0 ? 0 : state.trainMs / state.steps,
      durationMs: state.elapsedMs,
      resumedAfterEpoch,
    };
  } finally {
    optimizer.dispose();
  }
}

function batchAccuracy(vars: NetworkVariables, spec: NetworkSpec, x: Float32Array, y: Int32Array, size: number): number {
  const predicted = tf.tidy(() => tf.argMax(headLogits(vars, features(vars, inputTensor(x, size, spec), spec, null)), 1));
  const values = predicted.dataSync();
  predicted.dispose();
  return accuracyOf(values, y);
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
// Checkpoint state: weights, Adam moments and step count, Adam's running beta powers.

/**
 * tf.train.adam keeps beta1^t and beta2^t as running products, but setWeights()
 * recomputes them with pow(), which differs in the last float32 bits; a resumed run
 * would drift from an uninterrupted one. We save and restore the products themselves.
 */
interface AdamInternals {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
}

function adamInternals(optimizer: tf.Optimizer): AdamInternals | null {
  const o = optimizer as unknown as Partial<AdamInternals>;
  return o.accBeta1 instanceof tf.Variable && o.accBeta2 instanceof tf.Variable ? (o as AdamInternals) : null;
}

async function stateTensors(vars: NetworkVariables, optimizer: tf.Optimizer): Promise<CheckpointTensor[]> {
  const out: CheckpointTensor[] = VARIABLE_ORDER.map((name) => ({
    name: `weights/${name}`,
    dtype: 'float32',
    shape: vars[name].shape,
    data: vars[name].dataSync().slice() as Float32Array,
  }));
  for (const { name, tensor } of await optimizer.getWeights()) {
    out.push({
      name: `adam/${name}`,
      dtype: tensor.dtype === 'int32' ? 'int32' : 'float32',
      shape: tensor.shape,
      data: tensor.dataSync().slice() as Float32Array | Int32Array,
    });
    // getWeights() hands out a fresh scalar for the step count; the moments are the live variables.
    if (!(tensor instanceof tf.Variable)) tensor.dispose();
  }
  const internals = adamInternals(optimizer);
  if (internals) {
    out.push({ name: 'adamBeta/accBeta1', dtype: 'float32', shape: [], data: internals.accBeta1.dataSync().slice() as Float32Array });
    out.push({ name: 'adamBeta/accBeta2', dtype: 'float32', shape: [], data: internals.accBeta2.dataSync().slice() as Float32Array });
  }
  return out;
}

async function restore(
  path: string,
  fingerprint: string,
  vars: NetworkVariables,
  learningRate: number,
  logger: ModelLogger | undefined,
): Promise<{ state: LoopState; optimizer: tf.Optimizer } | null> {
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
  for (const name of VARIABLE_ORDER) {
    const saved = byName.get(`weights/${name}`);
    if (!saved || saved.shape.join() !== vars[name].shape.join()) {
      logger?.warn({ checkpoint: path, weight: name }, 'ignoring a checkpoint whose weights do not fit this model; training from the start');
      return null;
    }
  }
  for (const name of VARIABLE_ORDER) assignValues(vars[name], byName.get(`weights/${name}`)!.data as Float32Array);

  const optimizer = tf.train.adam(learningRate, 0.9, 0.999, 1e-8);
  const adamWeights = checkpoint.tensors
    .filter((t) => t.name.startsWith('adam/'))
    .map((t) => ({ name: t.name.slice('adam/'.length), tensor: tf.tensor(t.data, t.shape, t.dtype) }));
  await optimizer.setWeights(adamWeights);
  // setWeights turned each tensor into a variable sharing its data; our handles can go.
  for (const { tensor } of adamWeights) tensor.dispose();
  const internals = adamInternals(optimizer);
  const b1 = byName.get('adamBeta/accBeta1');
  const b2 = byName.get('adamBeta/accBeta2');
  if (internals && b1 && b2) {
    tf.tidy(() => {
      internals.accBeta1.assign(tf.scalar(b1.data[0]!, 'float32'));
      internals.accBeta2.assign(tf.scalar(b2.data[0]!, 'float32'));
    });
  } else {
    logger?.warn({ checkpoint: path }, "could not restore Adam's beta powers exactly; the resumed run may differ in the last bits");
  }
  return { state: checkpoint.state, optimizer };
}
