import type { SweepRecord } from '@graft/runs';
import type { SweepPlan } from './plan.ts';

/**
 * The sweep record of a plan (written through @graft/runs' writeSweepRecord): what was
 * planned, and for each run the record that carried it out (`runIds[index]`, once started).
 * `previous` (the record of an earlier attempt at the same sweep id) keeps its createdAt and
 * the run ids of runs this attempt has not started.
 */
export function sweepRecordOf(plan: SweepPlan, runIds: ReadonlyArray<string | undefined>, previous?: SweepRecord, now = new Date()): SweepRecord {
  return {
    sweepId: plan.sweepId,
    createdAt: previous?.createdAt ?? now.toISOString(),
    updatedAt: now.toISOString(),
    configPath: plan.configPath,
    configName: plan.configName,
    target: plan.target,
    grid: plan.grid.map((axis) => ({ key: axis.key, values: axis.values })),
    seeds: plan.seeds,
    runs: plan.runs.map((run) => {
      const runId = runIds[run.index] ?? previous?.runs[run.index]?.runId;
      return {
        index: run.index,
        ...(run.seed === undefined ? {} : { seed: run.seed }),
        params: run.params,
        keys: run.entries,
        ...(runId === undefined ? {} : { runId }),
      };
    }),
  };
}
