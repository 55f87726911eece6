// The network, its forward pass and evaluation, and the model format (save/load), plus the
// compute-backend choice. Importing this module loads tfjs (~1 s): stage definitions must
// `await import('@graft/model')` inside run() so that the CLI stays fast for cache hits.
export { BACKEND_REQUESTS, initBackend, tfjsVersion } from './backend.ts';
export type { BackendInfo, BackendRequest } from './backend.ts';
export {
  BIAS_INIT,
  KERNEL_STDDEV,
  LAYER_NAMES,
  SEED_NETWORK,
  VARIABLE_ORDER,
  assignValues,
  buildNetwork,
  featureGeometry,
  networkVariables,
  readWeights,
  specFromModel,
  truncatedNormalValues,
} from './network.ts';
export type { NetworkSpec, NetworkVariables } from './network.ts';
export { batchRows, convPool, crossEntropy, drawDropoutMasks, fc1Features, features, gatherBatch, headLogits, inputTensor, trainingLoss } from './forward.ts';
export type { Batch, DropoutMasks, LabelledImages } from './forward.ts';
export {
  EVAL_BATCH_SIZE,
  accuracyOf,
  accuracyOn,
  baseFeatures,
  classificationReport,
  evaluate,
  perClassByLabel,
  predictClasses,
  predictFromBaseFeatures,
  testClasses,
} from './evaluate.ts';
export type { BaseFeatures, Evaluation, TestClasses } from './evaluate.ts';
export { MODEL_DIR, MODEL_JSON, WEIGHTS_BIN, listModelFiles, loadModel, modelDirOf, modelFilesOf, readModelArtifact, saveModel, writeModelArtifact } from './io.ts';
export type { ModelFiles } from './io.ts';
export { silentLogger } from './logger.ts';
export type { ModelLogger } from './logger.ts';
export { mapLabels } from './labels.ts';
export { MODEL_ERROR_CODES } from './error-codes.ts';
export type { ModelErrorCode } from './error-codes.ts';
