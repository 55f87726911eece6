/**
 * @graft/sweep: many runs of one config. A grid (`--grid entry.param=[...]` or the config's
 * `sweep` section) times seeds is planned into runs and deduplicated build units (one per
 * artifact key: an entry shared by several runs is built once); a unit is executed on its
 * own, by `graft run --jobs` in child processes or by a queue worker on another machine;
 * sweep records go through @graft/runs.
 */
export { parseGridFlag, parseJobs } from './grid.ts';
export { describeUnit, planSweep } from './plan.ts';
export type { BuildUnit, PlannedRun, SweepPlan, SweepRequest } from './plan.ts';
export { executeUnit } from './execute.ts';
export type { ExecuteUnitOptions, UnitResult } from './execute.ts';
export { sweepRecordOf } from './record.ts';
export { describeFailures, isChain, runPlanInParallel, runPlanInProcess } from './schedule.ts';
export type { InProcessOptions, ParallelOptions, PlanOutcome, UnitError, UnitFailure, UnitJob, UnitPool } from './schedule.ts';
export { SWEEP_ERROR_CODES } from './error-codes.ts';
export type { SweepErrorCode } from './error-codes.ts';
