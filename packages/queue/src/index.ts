export { connectRedis, describeLostRedis, parseQueueUrl, redisOptions } from './connection.ts';
export type { QueueLocation } from './connection.ts';
export { QUEUE_ERROR_CODES } from './errors.ts';
export type { QueueErrorCode } from './errors.ts';
export { KEY_PREFIX, QUEUE_NAME, UNIT_STATES, listSweepIds, loadSweep, resolveSweepId, submitSweep, sweepStatus, unitJobId } from './sweeps.ts';
export type { QueueUnit, SweepStatus, SweepSubmission, UnitOutcome, UnitProgress, UnitState, UnitStatus, WorkerIdentity } from './sweeps.ts';
export { startQueueWorker } from './worker.ts';
export type { QueueLogger, QueueWorker, QueueWorkerOptions, UnitRequest, UnitRunner, WorkerSummary } from './worker.ts';
