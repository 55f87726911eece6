import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { adamSimd, webAssembly } from './adam-simd.ts';
import type { AdamSimdKernels } from './adam-simd.ts';

export interface AdamConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/**
 * Everything a resumed run needs to continue bit-identically, per variable in the order
 * the optimizer was given them. The beta powers are kept as the float32 running products
 * both implementations multiply up step by step (pow(beta, t) differs in the last bits).
 */
export interface AdamState {
  iterations: number;
  accBeta1: number;
  accBeta2: number;
  m: Float32Array[];
  v: Float32Array[];
}

/** Adam over a fixed list of variables, one step per minimize() call. */
export interface TrainingOptimizer {
  /** 'fused': one pass per variable over the wasm heap; 'tfjs': tf.train.adam. */
  readonly kind: 'fused' | 'tfjs';
  /** Fused only: whether the update runs as wasm SIMD (else a JavaScript loop, ~5x slower). */
  readonly vectorised: boolean;
  /** One update of every variable; returns the loss (a tensor the caller owns). */
  minimize(loss: () => tf.Scalar): tf.Scalar;
  getState(): AdamState;
  setState(state: AdamState): void;
  dispose(): void;
}

const f32 = Math.fround;

/**
 * tf.train.adam's arithmetic (tfjs-core 4.22 adam_optimizer.js), one element at a time,
 * rounding to float32 after every operation exactly where tfjs's float32 kernels do:
 *
 *   m' = m*b1 + g*(1-b1)            v' = v*b2 + g²*(1-b2)
 *   w' = (m'/(1-b1^t)) / (sqrt(v'/(1-b2^t)) + eps) * -lr + w
 *
 * Every step is a correctly rounded IEEE float32 operation (a double result of float32
 * inputs, rounded once, is), so this matches the op-by-op version bit for bit on any
 * backend whose elementwise kernels are plain float32 (no fused multiply-add).
 */
interface AdamScalars {
  b1: number;
  omb1: number;
  b2: number;
  omb2: number;
  c1: number;
  c2: number;
  eps: number;
  nlr: number;
}

function adamUpdate(
  out: Float32Array,
  w: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  k: AdamScalars,
  decay: number,
  from: number,
): void {
  const { b1, omb1, b2, omb2, c1, c2, eps, nlr } = k;
  const n = w.length;
  for (let i = from; i < n; i++) {
    const gi = decay === 0 ? g[i]! : f32(g[i]! + f32(w[i]! * decay));
    const mi = f32(f32(m[i]! * b1) + f32(gi * omb1));
    const vi = f32(f32(v[i]! * b2) + f32(f32(gi * gi) * omb2));
    m[i] = mi;
    v[i] = vi;
    const denom = f32(f32(Math.sqrt(f32(vi / c2))) + eps);
    out[i] = f32(f32(f32(mi / c1) / denom) * nlr) + w[i]!;
  }
}

/** The SIMD update bound to the backend's memory, built once per memory; null without SIMD. */
const simdByMemory = new WeakMap<object, AdamSimdKernels | null>();

function simdFor(backend: BackendWasm): AdamSimdKernels | null {
  const memory = (backend as unknown as { wasm?: { asm?: { memory?: unknown } } }).wasm?.asm?.memory;
  if (!(memory instanceof webAssembly.Memory)) return null;
  if (!simdByMemory.has(memory)) simdByMemory.set(memory, adamSimd(memory));
  return simdByMemory.get(memory)!;
}

/**
 * Adam as one pass per variable over the wasm heap (SIMD where the runtime has it), bit
 * for bit tf.train.adam's float32 arithmetic. Needs the wasm backend to be active.
 */
export class FusedAdam implements TrainingOptimizer {
  readonly kind = 'fused';
  private readonly vars: tf.Variable[];
  private readonly scalars: Omit<AdamScalars, 'c1' | 'c2'>;
  private iterations = 0;
  private accBeta1: number;
  private accBeta2: number;
  /** The moments live in the wasm heap, next to the weights the SIMD update reads. */
  private readonly m: tf.Tensor[];
  private readonly v: tf.Tensor[];
  private readonly backend: BackendWasm;
  private readonly simd: AdamSimdKernels | null;
  readonly vectorised: boolean;

  constructor(
    varList: readonly tf.Variable[],
    config: AdamConfig,
    private readonly decay: readonly number[],
    simd: boolean,
  ) {
    this.vars = [...varList];
    this.backend = tf.backend() as BackendWasm;
    this.simd = simd ? simdFor(this.backend) : null;
    this.vectorised = this.simd !== null;
    // tfjs makes float32 scalars of beta, 1 - beta and -lr (the last two computed in double).
    this.scalars = {
      b1: f32(config.beta1),
      omb1: f32(1 - config.beta1),
      b2: f32(config.beta2),
      omb2: f32(1 - config.beta2),
      eps: f32(config.epsilon),
      nlr: f32(-config.learningRate),
    };
    this.accBeta1 = this.scalars.b1;
    this.accBeta2 = this.scalars.b2;
    this.m = this.vars.map((x) => tf.zeros(x.shape, 'float32'));
    this.v = this.vars.map((x) => tf.zeros(x.shape, 'float32'));
  }

  minimize(loss: () => tf.Scalar): tf.Scalar {
    const { value, grads } = tf.variableGrads(loss, this.vars);
    try {
      this.apply(this.vars.map((x) => grads[x.name]));
    } finally {
      tf.dispose(Object.values(grads));
    }
    return value;
  }

  private heap(t: tf.Tensor): Float32Array {
    return this.backend.typedArrayFromHeap(t) as Float32Array;
  }

  private apply(grads: ReadonlyArray<tf.Tensor | undefined>): void {
    const k: AdamScalars = { ...this.scalars, c1: f32(1 - this.accBeta1), c2: f32(1 - this.accBeta2) };
    this.vars.forEach((x, i) => {
      const grad = grads[i];
      if (grad === undefined) return; // not trainable: tfjs skips it too
      // The new values go to a fresh buffer, not over the old: XNNPACK caches a packed
      // copy of a matmul or conv weight under its tensor id and would keep using the
      // stale packing, and another tensor may share the old buffer (wasm Identity).
      const next = tf.engine().makeTensorFromTensorInfo(this.backend.makeOutput(x.shape, 'float32'));
      // Views last: an allocation can grow the heap and detach earlier ones.
      const [out, w, g, m, v] = [next, x, grad, this.m[i]!, this.v[i]!].map((t) => this.heap(t)) as [
        Float32Array, Float32Array, Float32Array, Float32Array, Float32Array,
      ];
      let done = 0;
      if (this.simd) {
        done = w.length & ~3;
        const { b1, omb1, b2, omb2, c1, c2, eps, nlr } = k;
        this.simd.adam(out.byteOffset, w.byteOffset, g.byteOffset, m.byteOffset, v.byteOffset, done * 4, b1, omb1, b2, omb2, c1, c2, eps, nlr, f32(this.decay[i]!));
      }
      adamUpdate(out, w, g, m, v, k, f32(this.decay[i]!), done);
      x.assign(next);
      next.dispose();
    });
    this.accBeta1 = f32(this.accBeta1 * this.scalars.b1);
    this.accBeta2 = f32(this.accBeta2 * this.scalars.b2);
    this.iterations++;
  }

  getState(): AdamState {
    return {
      iterations: this.iterations,
      accBeta1: this.accBeta1,
      accBeta2: this.accBeta2,
      m: this.m.map((t) => this.heap(t).slice()),
      v: this.v.map((t) => this.heap(t).slice()),
    };
  }

  setState(state: AdamState): void {
    checkState(state, this.vars);
    this.iterations = state.iterations;
    this.accBeta1 = state.accBeta1;
    this.accBeta2 = state.accBeta2;
    // Nothing else reads the moments, so they can be overwritten in place.
    this.m.forEach((t, i) => this.heap(t).set(state.m[i]!));
    this.v.forEach((t, i) => this.heap(t).set(state.v[i]!));
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}

/**
 * Σ w² over tensors held by the wasm backend, in double precision (SIMD where available).
 */
export function sumOfSquaresWasm(tensors: readonly tf.Tensor[]): number {
  const backend = tf.backend() as BackendWasm;
  const simd = simdFor(backend);
  let total = 0;
  for (const t of tensors) {
    const x = backend.typedArrayFromHeap(t) as Float32Array;
    const done = simd ? x.length & ~3 : 0;
    if (simd) total += simd.sumSquares(x.byteOffset, done * 4);
    for (let i = done; i < x.length; i++) total += x[i]! * x[i]!;
  }
  return total;
}

export function checkState(state: AdamState, vars: readonly tf.Variable[]): void {
  const fits = (list: Float32Array[]) => list.length === vars.length && list.every((a, i) => a.length === vars[i]!.size);
  if (!fits(state.m) || !fits(state.v)) throw new RangeError('Adam state does not fit the variables being trained');
}
