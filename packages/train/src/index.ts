// Training: the loop, its checkpoints, batch plans and the optimizer facade.
// Importing this module loads tfjs (through @graft/model): stages import it inside run().
export { CHECKPOINT_FILE, trainLoop } from './train-loop.ts';
export type { BatchPlan, TrainOptions, TrainResult } from './train-loop.ts';
export { EVALUATION_ENV, chooseEvaluationMode } from './curve-evaluation.ts';
export type { EvaluationMode } from './curve-evaluation.ts';
export { BASE_CACHE_ENV, BASE_CACHE_MB_ENV, PooledFeatureCache, baseCacheSettings, defaultBaseCacheBytes } from './frozen-base.ts';
export type { BaseCacheSettings } from './frozen-base.ts';
export { contiguousPlan, shuffledEpochPlan, shuffledPlan } from './plans.ts';
export { readCheckpoint, writeCheckpoint } from './checkpoint.ts';
export type { Checkpoint, CheckpointTensor } from './checkpoint.ts';
export { createAdam, sumOfSquares } from './optimizer.ts';
export { ADAM_CONSTANTS, ALL_LAYERS, HEAD_ONLY, PHASE_ONE_DEFAULTS, PHASE_TWO_DEFAULTS, TRAINING_LIMITS } from './recipes.ts';
export type { Recipe } from './recipes.ts';
export { METRICS_FILE, readTrainingMetrics, trainingMetricsSchema, writeTrainingMetrics } from './metrics-file.ts';
export type { TrainingMetricsFile, TrainingMetricsHead } from './metrics-file.ts';
export type { AdamConfig, AdamState, TrainingOptimizer } from './optimizer.ts';
export { TRAIN_ERROR_CODES } from './error-codes.ts';
export type { TrainErrorCode } from './error-codes.ts';
