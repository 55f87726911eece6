/**
 * The training recipes of the seed notebook (DESIGN.md §1), declared once and used by the
 * training stages and by `graft bench` alike, so bench measures exactly the step the
 * stages run. Loss = mean softmax cross-entropy + l2 × mean over `regularise` of Σw²/2;
 * Adam with ADAM_CONSTANTS and the learning rate. Types only from tfjs-loading modules:
 * stage packages import this (`@graft/train/recipes`) at load time for their defaults.
 */
import type { NetworkVariables } from '@graft/model';

/** Adam's constants in the seed (tf.train.AdamOptimizer defaults but the learning rate). */
export const ADAM_CONSTANTS = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 } as const;

/** What trains and what the L2 term covers. */
export interface Recipe {
  /** 'head': only the head's kernel and bias change (the base runs with dropout, outside the tape). */
  trainable: 'all' | 'head';
  /** Kernels in the L2 term. */
  regularise: ReadonlyArray<keyof NetworkVariables>;
}

/** Phase one, the from-scratch baseline and full fine-tuning: every layer, L2 on all three kernels. */
export const ALL_LAYERS: Recipe = { trainable: 'all', regularise: ['convKernel', 'fc1Kernel', 'headKernel'] };

/** Phase two: the grafted head only, L2 on the head kernel (the seed regularised only what it trained). */
export const HEAD_ONLY: Recipe = { trainable: 'head', regularise: ['headKernel'] };

/** The seed's phase-one hyper-parameters: the phase-one stage's param defaults and bench's. */
export const PHASE_ONE_DEFAULTS = { epochs: 10, batchSize: 100, learningRate: 1e-4, l2: 0.001, keepProb: 0.7, evalEvery: 50 } as const;

/** The seed's phase-two hyper-parameters (8 × 550 shuffled batches, a fresh Adam). */
export const PHASE_TWO_DEFAULTS = { epochs: 8, batchesPerEpoch: 550, batchSize: 100, learningRate: 1e-4, l2: 0.001, keepProb: 0.7, evalEvery: 50 } as const;

/**
 * Upper bounds of the training params (both training stages use them): far above any
 * sensible run, low enough that a value past them is refused when the config is resolved
 * (exit 2, naming the param) instead of failing mid-run on an impossible allocation
 * ("Invalid typed array length"). Bounds never change a param's value, so no key changes.
 */
export const TRAINING_LIMITS = {
  /** One epoch of phase one takes about a minute here; 1000 is most of a day. */
  epochs: 1000,
  /** A batch's conv activations alone are batchSize × 24 × 24 × 30 floats: 283 MB at 4096, twice that with gradients. */
  batchSize: 4096,
  batchesPerEpoch: 1_000_000,
  /** batchesPerEpoch × batchSize: phase two draws each epoch's shuffle order up front, 4 bytes a row (40 MB here). */
  rowsPerEpoch: 10_000_000,
  evalEvery: 1_000_000,
  /**
   * Training computes in float32, where anything larger is Infinity. A huge learning rate
   * still runs and stops with NON_FINITE_LOSS naming the step (the reliability tests
   * diverge training that way on purpose), so no tighter bound is imposed on taste.
   */
  learningRate: 3.4028234663852886e38,
  l2: 3.4028234663852886e38,
} as const;
