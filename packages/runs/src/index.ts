/**
 * @graft/runs: the one owner of `<store>/runs/` (DESIGN.md §2-3). Run records and their
 * format, where a run's files live, atomic fsynced writes, listing, interrupted-run
 * detection and run refs. Formatting them for people is @graft/pipeline's compare.
 */
export {
  RUNS_DIR,
  RUN_LOG_FILE,
  RUN_RECORD_FILE,
  SWEEPS_DIR,
  RUNS_ERROR_CODES,
  listRuns,
  newRunId,
  resolveRunRefs,
  runDir,
  runLogPath,
  runRecordPath,
  runsDir,
  shortDate,
  writeRunRecord,
} from './store.ts';
export type { RunList, RunListWarning, RunsErrorCode } from './store.ts';
export { RUN_STATUSES, runRecordSchema, stageRunRecordSchema } from './record.ts';
export type { CurvePoint, RunRecord, StageRunRecord } from './record.ts';
export { describeSweep, listSweepIds, readSweepRecord, resolveSweepRef, sweepRecordPath, sweepRecordSchema, sweepRunSchema, sweepsDir, writeSweepRecord } from './sweep-record.ts';
export type { SweepRecord, SweepRun } from './sweep-record.ts';
