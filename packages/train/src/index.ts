// Training: the loop, its checkpoints, batch plans and the optimizer facade.
// Importing this module loads tfjs (through @graft/model): stages import it inside run().
export { CHECKPOINT_FILE, trainLoop } from './train-loop.ts';
export type { BatchPlan, TrainOptions, TrainResult } from './train-loop.ts';
export { EVALUATION_ENV, chooseEvaluationMode } from './curve-evaluation.ts';
export type { EvaluationMode } from './curve-evaluation.ts';
export { contiguousPlan, shuffledEpochPlan, shuffledPlan } from './plans.ts';
export { readCheckpoint, writeCheckpoint } from './checkpoint.ts';
export type { Checkpoint, CheckpointTensor } from './checkpoint.ts';
export { createAdam, sumOfSquares } from './optimizer.ts';
export type { AdamConfig, AdamState, TrainingOptimizer } from './optimizer.ts';
