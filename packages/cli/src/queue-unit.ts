/**
 * The unit runner of `graft worker`: each job's unit is built by the same worker processes as
 * `graft run --jobs` (unit-pool.ts / unit-child.ts: @graft/sweep's executeUnit against the
 * worker's store, inputs pulled from the remote, the artifact pushed to it). Why a process
 * per build: training runs long synchronous stretches, and BullMQ renews the job's lock from
 * this process's event loop; with training elsewhere a busy worker never looks dead, and a
 * dead one (kill -9) takes its build processes with it (they exit when their IPC channel
 * closes), so no orphan keeps building a unit another worker has taken over.
 *
 * This side writes a run record per unit into the worker's store (runs/<id>/run.json, the
 * unit's entry as the run's one stage, tagged `queue`) with the build's log in its log.ndjson.
 */
import { availableParallelism, hostname } from 'node:os';
import { GraftError, isGraftError, type ProgressReporter } from '@graft/core';
import type { UnitRunner } from '@graft/queue';
import type { RunRecord } from '@graft/runs';
import type { SweepPlan } from '@graft/sweep';
import type { RemoteArgs } from './commands/remote.ts';

export function createUnitRunner(options: { storeRoot: string; remote: RemoteArgs; verbose: boolean; concurrency: number }): { runUnit: UnitRunner; close(): Promise<void> } {
  let pool: Promise<import('./unit-pool.ts').ChildUnitPool> | undefined;
  const openPool = () =>
    (pool ??= import('./unit-pool.ts').then(({ ChildUnitPool }) => {
      const url = options.remote.remote ?? (process.env['GRAFT_REMOTE'] || undefined);
      const remote = url === undefined ? undefined : { url, ...(options.remote.endpoint === undefined ? {} : { endpoint: options.remote.endpoint }), ...(options.remote.pathStyle === undefined ? {} : { pathStyle: options.remote.pathStyle }) };
      return new ChildUnitPool({ storeRoot: options.storeRoot, resume: true, rebuildCorrupt: true, ...(remote ? { remote } : {}) });
    }));

  const runUnit: UnitRunner = async ({ submission, unit: queued, attempt, signal, onProgress }) => {
    const plan = submission.plan as SweepPlan;
    const unit = plan.units.find((u) => u.id === queued.id);
    if (!unit) throw new GraftError('QUEUE_BAD_JOB', `sweep ${submission.sweepId}'s plan has no unit ${queued.id}`);
    const run = plan.runs[unit.run]!;
    const [units, { GRAFT_VERSION }, { newRunId, runLogPath, writeRunRecord }, { createLogger, createProgressFactory }] = await Promise.all([
      openPool(),
      import('@graft/pipeline'),
      import('@graft/runs'),
      import('./logging.ts'),
    ]);
    const runId = newRunId();
    const logger = (await createLogger({ logFile: runLogPath(options.storeRoot, runId), level: options.verbose ? 'debug' : 'info' })).child({ runId, sweep: plan.sweepId });
    const logProgress = (await createProgressFactory(logger, false))(unit.entry);
    // Progress records in the log as `graft run` writes them, and step n/total on the job for `graft sweep status`.
    let total = 0;
    const reporter: ProgressReporter = {
      start(label, steps) {
        total = steps;
        logProgress.start(label, steps);
        onProgress(0, steps);
      },
      update(current, fields) {
        logProgress.update(current, fields);
        onProgress(current, total);
      },
      stop() {
        logProgress.stop();
      },
    };
    const record: RunRecord = {
      runId,
      createdAt: new Date().toISOString(),
      status: 'running',
      pid: process.pid,
      hostname: hostname(),
      target: unit.entry,
      configPath: plan.configPath,
      configName: plan.configName,
      config: run.config,
      ...(run.seed === undefined ? {} : { seed: run.seed }),
      backend: { requested: unit.backend },
      versions: { graft: GRAFT_VERSION, node: process.version },
      stages: {},
      // Not `sweep`: that tag marks the record of a whole run of a sweep (graft run --grid);
      // a queue worker records single units of runs whose other entries other workers build.
      queue: { sweepId: plan.sweepId, run: run.index, unit: unit.id, attempt },
    };
    await writeRunRecord(options.storeRoot, record);
    try {
      const result = await units.execute(
        // With every core busy building, evaluation on a thread of its own would only compete.
        { unit, force: false, inlineEvaluation: options.concurrency >= availableParallelism() },
        { logger, progress: reporter },
        signal,
      );
      const entryConfig = run.config.entries.find((e) => e.name === unit.entry);
      record.stages[unit.entry] = {
        stage: result.stage,
        stageVersion: result.stageVersion,
        key: result.key,
        path: result.path,
        cached: result.outcome !== 'built',
        ...(result.outcome === 'pulled' ? { pulled: true } : {}),
        durationMs: result.durationMs,
        params: unit.params,
        inputs: entryConfig ? entryConfig.inputs : {},
        metrics: result.metrics,
      };
      if (result.backend && result.outcome === 'built') record.backend.used = result.backend;
      if (result.tfjs) record.versions.tfjs = result.tfjs;
      record.status = 'succeeded';
      return { outcome: result.outcome, durationMs: result.durationMs, runId };
    } catch (error) {
      const reason = signal.aborted ? signal.reason : error;
      record.status = 'failed';
      record.error = { code: isGraftError(reason) ? reason.code : 'UNEXPECTED', message: reason instanceof Error ? reason.message : String(reason), stage: unit.entry };
      throw reason;
    } finally {
      record.finishedAt = new Date().toISOString();
      await writeRunRecord(options.storeRoot, record).catch((error) => logger.warn({ err: error }, 'could not write the run record'));
    }
  };
  return {
    runUnit,
    close: async () => {
      if (pool) await (await pool).close('drain');
    },
  };
}
