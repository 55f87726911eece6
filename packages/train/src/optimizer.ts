import * as tf from '@tensorflow/tfjs';
import { FusedAdam, checkState, sumOfSquaresWasm } from '@graft/wasm-kernels';
import type { AdamConfig, AdamState, TrainingOptimizer } from '@graft/wasm-kernels';

export type { AdamConfig, AdamState, TrainingOptimizer } from '@graft/wasm-kernels';

/**
 * The fused update on the wasm backend, tf.train.adam elsewhere. tf.train.adam runs a
 * dozen elementwise kernels per variable, each allocating its result (~15-20 ms a step
 * over the network's 2.16M parameters on wasm); the fused loop reads and writes every
 * array once, in place.
 */
export function createAdam(
  varList: readonly tf.Variable[],
  config: AdamConfig,
  options: {
    fused?: boolean;
    simd?: boolean;
    /**
     * Per variable, c in an L2 term c/2 * Σw² left out of the loss: c*w is added to the
     * gradient here, which saves the tape a square, a sum and their backward passes over
     * every regularised weight. Default 0 (none).
     */
    decay?: readonly number[];
  } = {},
): TrainingOptimizer {
  const wasm = tf.getBackend() === 'wasm';
  if (options.fused && !wasm) throw new RangeError(`the fused Adam update needs the wasm backend, not '${tf.getBackend()}'`);
  const decay = varList.map((_, i) => options.decay?.[i] ?? 0);
  return (options.fused ?? wasm) ? new FusedAdam(varList, config, decay, options.simd ?? true) : new TfjsAdam(varList, config, decay);
}

/** tf.train.adam's private fields we read and restore (see AdamState). */
interface AdamInternals {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  iterations_: number;
}

class TfjsAdam implements TrainingOptimizer {
  readonly kind = 'tfjs';
  readonly vectorised = false;
  private readonly vars: tf.Variable[];
  private optimizer: tf.AdamOptimizer;

  constructor(
    varList: readonly tf.Variable[],
    private readonly config: AdamConfig,
    private readonly decay: readonly number[],
  ) {
    this.vars = [...varList];
    this.optimizer = this.fresh();
  }

  private fresh(): tf.AdamOptimizer {
    return tf.train.adam(this.config.learningRate, this.config.beta1, this.config.beta2, this.config.epsilon);
  }

  private get internals(): AdamInternals {
    return this.optimizer as unknown as AdamInternals;
  }

  minimize(loss: () => tf.Scalar): tf.Scalar {
    if (this.decay.every((c) => c === 0)) return this.optimizer.minimize(loss, true, this.vars)!;
    const { value, grads } = tf.variableGrads(loss, this.vars);
    tf.tidy(() => {
      // The same float32 operations as the fused update: g + (w * c).
      // In varList order, as minimize() passes them (the moments are kept by position).
      const decayed = this.vars.flatMap((x, i) => {
        const g = grads[x.name];
        return g === undefined ? [] : [{ name: x.name, tensor: this.decay[i] === 0 ? g : tf.add(g, tf.mul(x, this.decay[i]!)) }];
      });
      this.optimizer.applyGradients(decayed);
    });
    tf.dispose(Object.values(grads));
    return value;
  }

  getState(): AdamState {
    // Moments exist from the first step on, in varList order (minimize keeps that order).
    const moments = this.optimizer as unknown as {
      accumulatedFirstMoment: Array<{ variable: tf.Variable }>;
      accumulatedSecondMoment: Array<{ variable: tf.Variable }>;
    };
    const read = (list: Array<{ variable: tf.Variable }>) =>
      this.vars.map((x, i) => (list[i] ? (list[i]!.variable.dataSync().slice() as Float32Array) : new Float32Array(x.size)));
    return {
      iterations: this.internals.iterations_,
      accBeta1: this.internals.accBeta1.dataSync()[0]!,
      accBeta2: this.internals.accBeta2.dataSync()[0]!,
      m: read(moments.accumulatedFirstMoment),
      v: read(moments.accumulatedSecondMoment),
    };
  }

  setState(state: AdamState): void {
    checkState(state, this.vars);
    this.optimizer.dispose();
    this.optimizer = this.fresh();
    const trainable = false;
    const o = this.optimizer as unknown as {
      accumulatedFirstMoment: Array<{ originalName: string; variable: tf.Variable }>;
      accumulatedSecondMoment: Array<{ originalName: string; variable: tf.Variable }>;
    };
    // tidy frees the initial tensors; the variables (which share their data) survive it.
    const moment = (x: tf.Variable, data: Float32Array, suffix: string) => ({
      originalName: `${x.name}/${suffix}`,
      variable: tf.tidy(() => tf.variable(tf.tensor(data, x.shape, 'float32'), trainable)),
    });
    o.accumulatedFirstMoment = this.vars.map((x, i) => moment(x, state.m[i]!, 'm'));
    o.accumulatedSecondMoment = this.vars.map((x, i) => moment(x, state.v[i]!, 'v'));
    tf.tidy(() => {
      this.internals.accBeta1.assign(tf.scalar(state.accBeta1, 'float32'));
      this.internals.accBeta2.assign(tf.scalar(state.accBeta2, 'float32'));
    });
    this.internals.iterations_ = state.iterations;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

/**
 * Σ w² over the given tensors, in double precision on wasm (SIMD where available), else
 * as a float32 tfjs sum. For the L2 term's value when its gradient goes through `decay`.
 */
export function sumOfSquares(tensors: readonly tf.Tensor[]): number {
  if (tf.getBackend() !== 'wasm') {
    return tf.tidy(() => tf.addN(tensors.map((t) => tf.sum(tf.square(t)))).dataSync()[0]!);
  }
  return sumOfSquaresWasm(tensors);
}
