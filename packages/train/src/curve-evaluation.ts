/**
 * The training curve's evaluations (every `evalEvery` batches: the batch's accuracy and
 * the whole validation set's, dropout off, with the weights right after that step).
 *
 * Evaluation never changes training, so it can run on the machine's other core: the
 * 'worker' evaluator copies the weights at each curve point and sends them to a worker
 * thread (curve-evaluation.worker.ts) with its own tfjs instance, while the training
 * thread goes on with the next batches. The worker runs the same code on the same backend
 * and kernels, so every number is the one the training thread would have computed, and
 * points are recorded strictly in step order. The 'inline' evaluator is the plain
 * in-thread path, used on a 1-core machine, for backends a worker cannot load, and when
 * GRAFT_EVALUATION=inline.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { GraftError, startWorker } from '@graft/core';
import type { CurvePoint } from '@graft/core';
import { VARIABLE_ORDER, accuracyOf, accuracyOn, baseFeatures, features, headLogits, inputTensor, predictFromBaseFeatures } from '@graft/model';
import type { BaseFeatures, LabelledImages, NetworkSpec, NetworkVariables } from '@graft/model';
import { TRAIN_ERROR_CODES } from './error-codes.ts';

type VariableName = keyof NetworkVariables;

export type EvaluationMode = 'auto' | 'worker' | 'inline';
export const EVALUATION_ENV = 'GRAFT_EVALUATION';

/** What the loop knows of a curve point when it submits it; the accuracies come from the evaluator. */
export type PointAt = Omit<CurvePoint, 'batchAccuracy' | 'valAccuracy'>;

export interface StepBatch {
  x: Float32Array;
  y: Int32Array;
  size: number;
}

export interface CurveEvaluator {
  readonly mode: 'worker' | 'inline';
  /**
   * Evaluates the weights as they are now. `record` is called with the point, in submission
   * order: at once (inline) or when the worker answers. Resolves when the loop may go on
   * (the worker evaluator keeps at most two points in flight, so snapshots cannot pile up).
   */
  submit(at: PointAt, batch: StepBatch, msPerStep: number): Promise<void>;
  /**
   * Runs `then` once every point submitted so far is recorded: at once when none is pending.
   * The loop's progress updates go through here, so whatever they log keeps its place among
   * the curve's log lines.
   */
  inOrder(then: () => void): void;
  /** Resolves once every submitted point is recorded; rejects if an evaluation failed. */
  drain(): Promise<void>;
  /** Stops the worker, if any. Safe to call more than once and after a failure. */
  close(): Promise<void>;
}

export interface CurveEvaluatorOptions {
  mode?: EvaluationMode;
  vars: NetworkVariables;
  spec: NetworkSpec;
  validation: LabelledImages;
  /** Variables the loop changes; the worker receives only these after the first point. */
  trained: readonly VariableName[];
  /**
   * The base (conv, fc1) never changes: the validation set's base features are computed
   * at the first point and every later point runs the head alone (PointScorer).
   */
  frozenBase?: boolean;
  record(point: CurvePoint, msPerStep: number): void;
}

/**
 * The accuracies of one curve point: the step's batch and the validation set, dropout off.
 * With `frozenBase` (phase two: only the head changes) the validation set's base features
 * are computed once, at the first point, and kept (5,000 × 500 floats, 10 MB); every point
 * then runs the head alone on them, with the kernels and chunks accuracyOn uses, so the
 * same numbers. The batch's accuracy is computed from its images (100 of them).
 */
export class PointScorer {
  private validationBase: BaseFeatures | null = null;

  constructor(
    private readonly spec: NetworkSpec,
    private readonly validation: LabelledImages,
    private readonly frozenBase: boolean,
  ) {}

  score(vars: NetworkVariables, batch: StepBatch): { batchAccuracy: number; valAccuracy: number } {
    const { spec, validation } = this;
    const predicted = tf.tidy(() => tf.argMax(headLogits(vars, features(vars, inputTensor(batch.x, batch.size, spec), spec, null)), 1));
    const values = predicted.dataSync();
    predicted.dispose();
    let valAccuracy: number;
    if (this.frozenBase) {
      this.validationBase ??= baseFeatures(vars, spec, validation);
      valAccuracy = accuracyOf(predictFromBaseFeatures(vars, this.validationBase), validation.labels);
    } else {
      valAccuracy = accuracyOn(vars, spec, validation);
    }
    return { batchAccuracy: accuracyOf(values, batch.y), valAccuracy };
  }

  dispose(): void {
    this.validationBase?.dispose();
    this.validationBase = null;
  }
}

/**
 * 'auto' picks the worker when the machine has a second core and the backend is one a
 * worker thread can load (wasm, cpu; tfjs-node is native and multi-threaded already);
 * GRAFT_EVALUATION=inline|worker overrides 'auto'.
 */
export function chooseEvaluationMode(mode: EvaluationMode, backend: string, cores = availableParallelism()): 'worker' | 'inline' {
  const requested = mode === 'auto' ? envMode() : mode;
  if (requested !== 'auto') return requested;
  return cores > 1 && (backend === 'wasm' || backend === 'cpu') ? 'worker' : 'inline';
}

function envMode(): EvaluationMode {
  const value = process.env[EVALUATION_ENV];
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'worker' || value === 'inline') return value;
  throw new GraftError(TRAIN_ERROR_CODES.badEnvironment, `${EVALUATION_ENV}=${value} is not one of auto, worker, inline; unset it or pick one`, { exitCode: 2 });
}

export function openCurveEvaluator(options: CurveEvaluatorOptions): CurveEvaluator {
  const mode = chooseEvaluationMode(options.mode ?? 'auto', tf.getBackend());
  return mode === 'worker' ? new WorkerEvaluator(options) : new InlineEvaluator(options);
}

class InlineEvaluator implements CurveEvaluator {
  readonly mode = 'inline';
  private readonly scorer: PointScorer;

  constructor(private readonly options: CurveEvaluatorOptions) {
    this.scorer = new PointScorer(options.spec, options.validation, options.frozenBase ?? false);
  }

  async submit(at: PointAt, batch: StepBatch, msPerStep: number): Promise<void> {
    this.options.record({ ...at, ...this.scorer.score(this.options.vars, batch) }, msPerStep);
  }

  inOrder(then: () => void): void {
    then();
  }

  async drain(): Promise<void> {}
  async close(): Promise<void> {
    this.scorer.dispose();
  }
}

// ---------------------------------------------------------------------------------
// The worker evaluator and its message protocol.

export type WorkerRequest =
  | { type: 'init'; backend: string; spec: NetworkSpec; validation: LabelledImages; frozenBase: boolean }
  | {
      type: 'evaluate';
      id: number;
      weights: Partial<Record<VariableName, Float32Array>>;
      shapes: Partial<Record<VariableName, number[]>>;
      batch: StepBatch;
    };

export type WorkerReply =
  | { type: 'result'; id: number; batchAccuracy: number; valAccuracy: number }
  | { type: 'error'; message: string; stack?: string };

/** Points in flight before submit() waits; each holds a copy of the changed weights (8.6 MB for fc1). */
const MAX_IN_FLIGHT = 2;

interface InFlight {
  id: number;
  at: PointAt;
  msPerStep: number;
  /** inOrder callbacks queued behind this point. */
  then: Array<() => void>;
}

class WorkerEvaluator implements CurveEvaluator {
  readonly mode = 'worker';
  /** Started at the first point, so a loop that never evaluates (bench) never pays for it. */
  private worker: Worker | null = null;
  private readonly inFlight: InFlight[] = [];
  private nextId = 0;
  private sentAll = false;
  private failure: Error | null = null;
  private closed = false;
  private waiters: Array<() => void> = [];

  constructor(private readonly options: CurveEvaluatorOptions) {}

  private start(): Worker {
    const worker = spawnEvaluationWorker();
    worker.on('message', (reply: WorkerReply) => this.onReply(reply));
    worker.on('error', (error) => this.fail(`the evaluation worker crashed: ${error.message}`, error));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(`the evaluation worker exited (code ${code}) before training finished`);
    });
    const { validation, spec } = this.options;
    // A copy the worker owns (the caller's images may be a view into a larger Arrow buffer).
    const request: WorkerRequest = {
      type: 'init',
      backend: tf.getBackend(),
      spec,
      frozenBase: this.options.frozenBase ?? false,
      validation: {
        length: validation.length,
        rows: validation.rows,
        cols: validation.cols,
        images: validation.images.slice(),
        labels: Int32Array.from(validation.labels),
      },
    };
    worker.postMessage(request);
    return worker;
  }

  async submit(at: PointAt, batch: StepBatch, msPerStep: number): Promise<void> {
    this.throwIfFailed();
    if (this.closed) throw new Error('submit() after close()');
    this.worker ??= this.start();
    const names = this.sentAll ? this.options.trained : VARIABLE_ORDER;
    const weights: Partial<Record<VariableName, Float32Array>> = {};
    const shapes: Partial<Record<VariableName, number[]>> = {};
    const transfer: ArrayBuffer[] = [];
    for (const name of names) {
      // A private copy: the cpu backend's dataSync returns its live storage.
      const values = (this.options.vars[name].dataSync() as Float32Array).slice();
      weights[name] = values;
      shapes[name] = this.options.vars[name].shape;
      transfer.push(values.buffer as ArrayBuffer);
    }
    this.sentAll = true;
    const id = this.nextId++;
    this.inFlight.push({ id, at, msPerStep, then: [] });
    const request: WorkerRequest = { type: 'evaluate', id, weights, shapes, batch: { x: batch.x.slice(), y: batch.y.slice(), size: batch.size } };
    this.worker.postMessage(request, transfer);
    await this.waitUntil(() => this.inFlight.length < MAX_IN_FLIGHT);
  }

  inOrder(then: () => void): void {
    const last = this.inFlight[this.inFlight.length - 1];
    if (last) last.then.push(then);
    else then();
  }

  drain(): Promise<void> {
    return this.waitUntil(() => this.inFlight.length === 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.worker?.terminate();
  }

  private onReply(reply: WorkerReply): void {
    if (reply.type === 'error') {
      this.fail(`an evaluation in the worker failed: ${reply.message}`);
      return;
    }
    const head = this.inFlight[0];
    if (!head || head.id !== reply.id) {
      this.fail(`the evaluation worker answered point ${reply.id} out of order (expected ${head?.id ?? 'none'})`);
      return;
    }
    this.inFlight.shift();
    try {
      this.options.record({ ...head.at, batchAccuracy: reply.batchAccuracy, valAccuracy: reply.valAccuracy }, head.msPerStep);
      for (const then of head.then) then();
    } catch (error) {
      this.fail(`recording a curve point failed: ${error instanceof Error ? error.message : String(error)}`, error);
      return;
    }
    this.notify();
  }

  private fail(message: string, cause?: unknown): void {
    if (this.failure) return;
    this.failure = new GraftError(
      TRAIN_ERROR_CODES.evaluationFailed,
      `${message}. Nothing was published; rerun, or set ${EVALUATION_ENV}=inline to evaluate on the training thread.`,
      cause === undefined ? {} : { cause },
    );
    this.notify();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private async waitUntil(done: () => boolean): Promise<void> {
    for (;;) {
      this.throwIfFailed();
      if (done()) return;
      await new Promise<void>((wake) => this.waiters.push(wake));
    }
  }
}

/**
 * The worker's entry module, declared in this package's package.json (`graft.entryPoints`):
 * `curve-evaluation.worker.ts` from source (tsx, vitest), `curve-evaluation.worker.js` beside
 * the chunks of the bundled CLI. @graft/core's startWorker finds it in either world.
 */
export const EVALUATION_WORKER_ENTRY = 'curve-evaluation.worker';

function spawnEvaluationWorker(): Worker {
  return startWorker(import.meta.url, EVALUATION_WORKER_ENTRY);
}
