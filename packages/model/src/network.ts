import * as tf from '@tensorflow/tfjs';
import { GraftError } from '@graft/core';
import type { Rng } from '@graft/core';
import { MODEL_ERROR_CODES } from './error-codes.ts';

/** Shape of the seed's CNN (DESIGN.md §1); tests shrink it to run in milliseconds. */
export interface NetworkSpec {
  rows: number;
  cols: number;
  /** Conv filters (seed: 30). */
  filters: number;
  /** Square conv kernel size (seed: 5). */
  kernelSize: number;
  /** Units of the hidden dense layer (seed: 500). */
  hidden: number;
  numClasses: number;
  /** Dropout rate stored in the saved model's Dropout layers (seed: 0.3 = 1 - keep_prob). */
  dropoutRate: number;
}

export const SEED_NETWORK: Omit<NetworkSpec, 'numClasses'> = {
  rows: 28,
  cols: 28,
  filters: 30,
  kernelSize: 5,
  hidden: 500,
  dropoutRate: 0.3,
};

/** Layer names are fixed so saved weight names ('conv/kernel', 'head/bias', ...) are stable. */
export const LAYER_NAMES = {
  conv: 'conv',
  pool: 'pool',
  dropoutPool: 'dropout_pool',
  flatten: 'flatten',
  fc1: 'fc1',
  dropoutFc1: 'dropout_fc1',
  head: 'head',
} as const;

export const KERNEL_STDDEV = 0.1;
export const BIAS_INIT = 0.1;

/** The six trainable tensors of the network, in a fixed order. */
export interface NetworkVariables {
  convKernel: tf.Variable;
  convBias: tf.Variable;
  fc1Kernel: tf.Variable;
  fc1Bias: tf.Variable;
  headKernel: tf.Variable;
  headBias: tf.Variable;
}

export const VARIABLE_ORDER: ReadonlyArray<keyof NetworkVariables> = [
  'convKernel',
  'convBias',
  'fc1Kernel',
  'fc1Bias',
  'headKernel',
  'headBias',
];

/** Conv output side ('valid') and pooled side (2x2 stride 2 'same' = ceil(n/2)). */
export function featureGeometry(spec: Pick<NetworkSpec, 'rows' | 'cols' | 'kernelSize' | 'filters'>) {
  const convRows = spec.rows - spec.kernelSize + 1;
  const convCols = spec.cols - spec.kernelSize + 1;
  const poolRows = Math.ceil(convRows / 2);
  const poolCols = Math.ceil(convCols / 2);
  return { convRows, convCols, poolRows, poolCols, flat: poolRows * poolCols * spec.filters };
}

/**
 * The network as a tf.LayersModel, so it saves in the standard LayersModel format and
 * any tfjs user can load it. Kernels start at zero and are then filled from `rng`, so
 * one seed gives the same initial weights on every backend (tfjs initialisers draw
 * from their own, backend-dependent generators). With `rng` null every weight stays
 * zero, for callers that assign all of them (the transplant).
 */
export function buildNetwork(spec: NetworkSpec, rng: Rng | null): tf.Sequential {
  const { convRows, convCols } = featureGeometry(spec);
  if (convRows < 1 || convCols < 1) {
    throw new GraftError(
      MODEL_ERROR_CODES.architecture,
      `images of ${spec.rows}x${spec.cols} are smaller than the ${spec.kernelSize}x${spec.kernelSize} conv kernel`,
    );
  }
  const model = tf.sequential({
    name: 'graft_cnn',
    layers: [
      tf.layers.conv2d({
        name: LAYER_NAMES.conv,
        inputShape: [spec.rows, spec.cols, 1],
        filters: spec.filters,
        kernelSize: spec.kernelSize,
        strides: 1,
        padding: 'valid',
        activation: 'relu',
        kernelInitializer: 'zeros',
        biasInitializer: 'zeros',
      }),
      tf.layers.maxPooling2d({ name: LAYER_NAMES.pool, poolSize: 2, strides: 2, padding: 'same' }),
      tf.layers.dropout({ name: LAYER_NAMES.dropoutPool, rate: spec.dropoutRate }),
      tf.layers.flatten({ name: LAYER_NAMES.flatten }),
      tf.layers.dense({
        name: LAYER_NAMES.fc1,
        units: spec.hidden,
        activation: 'relu',
        kernelInitializer: 'zeros',
        biasInitializer: 'zeros',
      }),
      tf.layers.dropout({ name: LAYER_NAMES.dropoutFc1, rate: spec.dropoutRate }),
      tf.layers.dense({
        name: LAYER_NAMES.head,
        units: spec.numClasses,
        kernelInitializer: 'zeros',
        biasInitializer: 'zeros',
      }),
    ],
  });
  if (rng === null) return model;
  const vars = networkVariables(model);
  // Draw order conv -> fc1 -> head, like the seed's variable creation order.
  for (const name of ['convKernel', 'fc1Kernel', 'headKernel'] as const) {
    assignValues(vars[name], truncatedNormalValues(vars[name].size, rng));
  }
  for (const name of ['convBias', 'fc1Bias', 'headBias'] as const) {
    assignValues(vars[name], new Float32Array(vars[name].size).fill(BIAS_INIT));
  }
  return model;
}

/** `n` draws of N(0, stddev) truncated at ±2 stddev, as tf.truncated_normal. */
export function truncatedNormalValues(n: number, rng: Rng, stddev = KERNEL_STDDEV): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.nextTruncatedNormal(stddev);
  return out;
}

export function assignValues(variable: tf.Variable, values: Float32Array): void {
  const t = tf.tensor(values, variable.shape, 'float32');
  variable.assign(t);
  t.dispose();
}

function describeLayers(model: tf.LayersModel): string {
  return model.layers.map((l) => `${l.name} (${l.getClassName()})`).join(', ');
}

/**
 * The trainable tensors of a network built by buildNetwork or loaded from its saved
 * form. Anything else is rejected with a message naming what was found.
 */
export function networkVariables(model: tf.LayersModel): NetworkVariables {
  const expect = (name: string, className: string) => {
    let layer: tf.layers.Layer;
    try {
      layer = model.getLayer(name);
    } catch (error) {
      throw new GraftError(
        MODEL_ERROR_CODES.architecture,
        `the model has no layer '${name}' (${className}); it has: ${describeLayers(model)}. Was it produced by graft's phase-one or transplant stage?`,
        { cause: error },
      );
    }
    if (layer.getClassName() !== className) {
      throw new GraftError(
        MODEL_ERROR_CODES.architecture,
        `layer '${name}' is a ${layer.getClassName()}, expected ${className}; the model has: ${describeLayers(model)}`,
      );
    }
    const weights = layer.trainableWeights;
    if (weights.length !== 2) {
      throw new GraftError(MODEL_ERROR_CODES.architecture, `layer '${name}' has ${weights.length} trainable weights, expected a kernel and a bias`);
    }
    // LayerVariable.read() is the underlying tf.Variable: training updates it in place.
    return weights.map((w) => w.read() as tf.Variable) as [tf.Variable, tf.Variable];
  };
  const last = model.layers[model.layers.length - 1];
  if (!last || last.getClassName() !== 'Dense') {
    throw new GraftError(
      MODEL_ERROR_CODES.architecture,
      `the model's last layer is ${last ? `'${last.name}' (${last.getClassName()})` : 'missing'}, expected a Dense head; layers: ${describeLayers(model)}`,
    );
  }
  const [convKernel, convBias] = expect(LAYER_NAMES.conv, 'Conv2D');
  const [fc1Kernel, fc1Bias] = expect(LAYER_NAMES.fc1, 'Dense');
  const [headKernel, headBias] = expect(LAYER_NAMES.head, 'Dense');
  if (last.name !== LAYER_NAMES.head) {
    throw new GraftError(MODEL_ERROR_CODES.architecture, `the last layer is '${last.name}', expected the head '${LAYER_NAMES.head}'`);
  }
  return { convKernel, convBias, fc1Kernel, fc1Bias, headKernel, headBias };
}

/** Reads the spec back from a model (e.g. one loaded from disk). */
export function specFromModel(model: tf.LayersModel): NetworkSpec {
  const vars = networkVariables(model);
  const inputShape = model.inputs[0]?.shape ?? [];
  const [kh, kw, inChannels, filters] = vars.convKernel.shape as number[];
  const rows = inputShape[1];
  const cols = inputShape[2];
  if (rows == null || cols == null || inputShape[3] !== 1 || inChannels !== 1 || kh !== kw) {
    throw new GraftError(MODEL_ERROR_CODES.architecture, `unexpected input shape [${inputShape.join(', ')}] or conv kernel [${vars.convKernel.shape.join(', ')}]`);
  }
  let dropoutRate = 0;
  try {
    dropoutRate = (model.getLayer(LAYER_NAMES.dropoutPool).getConfig() as { rate?: number }).rate ?? 0;
  } catch {
    // A model without dropout layers still evaluates fine; the rate only documents training.
  }
  return {
    rows,
    cols,
    filters: filters!,
    kernelSize: kh!,
    hidden: vars.fc1Kernel.shape[1]!,
    numClasses: vars.headKernel.shape[1]!,
    dropoutRate,
  };
}

/** Copies every weight's values (row-major Float32Array), keyed as in NetworkVariables. */
export function readWeights(vars: NetworkVariables): Record<keyof NetworkVariables, Float32Array> {
  const out = {} as Record<keyof NetworkVariables, Float32Array>;
  for (const name of VARIABLE_ORDER) out[name] = vars[name].dataSync().slice() as Float32Array;
  return out;
}
