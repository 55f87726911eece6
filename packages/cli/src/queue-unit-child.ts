/**
 * Child process of `graft worker` (queue-unit.ts): builds ONE unit of a queued sweep with
 * @graft/sweep's executeUnit against the worker's store (inputs pulled from the remote,
 * the artifact pushed to it), writes a run record for it in that store (runs/<id>/run.json:
 * this unit's entry as the run's one stage, tagged with the sweep, job attempt and worker),
 * and answers over IPC. It exits when the worker goes away (the IPC channel closes): a
 * worker killed with -9 must not leave a build running that another worker now owns.
 */
import { hostname } from 'node:os';
import { isGraftError, type ProgressReporter, type SelectedBackend } from '@graft/core';
import type { RunRecord } from '@graft/runs';
import type { Logger } from 'pino';
import type { UnitChildMessage, UnitChildRequest } from './queue-unit.ts';

let finished = false;
process.on('disconnect', () => {
  if (!finished) process.exit(70);
});
// The worker decides when a unit stops: Ctrl-C in a terminal reaches the whole process
// group, and a first Ctrl-C means "finish the running units"; a scheduler's SIGTERM to every
// process of a job likewise goes through the worker, which gives the job back and then
// ends this process with SIGKILL (training keeps no state worth a graceful stop: its
// checkpoints are whole epochs, written atomically).
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

function send(message: UnitChildMessage): Promise<void> {
  return new Promise((resolve) => process.send!(message, undefined, {}, () => resolve()));
}

async function selectBackend(requested: string, logger: Logger): Promise<SelectedBackend> {
  const { initBackend } = await import('@graft/model');
  const info = await initBackend(requested, logger);
  return { backend: info.backend, tfjsVersion: info.tfjsVersion };
}

async function runUnit(request: UnitChildRequest): Promise<UnitChildMessage> {
  const [{ ArtifactStore }, { executeUnit }, { GRAFT_VERSION }, { newRunId, runLogPath, writeRunRecord }, { defaultRegistry }, { createLogger, createProgressFactory }, { openRemoteFrom, sharedArtifacts }] =
    await Promise.all([import('@graft/artifacts'), import('@graft/sweep'), import('@graft/pipeline'), import('@graft/runs'), import('./registry.ts'), import('./logging.ts'), import('./commands/remote.ts')]);
  const { unit, plan } = request;
  const run = plan.run;
  const store = new ArtifactStore(request.storeRoot, { lockTimeoutMs: Number.POSITIVE_INFINITY });
  await store.prepare('write');
  const runId = newRunId();
  const logger = (await createLogger({ logFile: runLogPath(store.root, runId), level: request.verbose ? 'debug' : 'info' })).child({ runId, sweep: plan.sweepId });
  const logProgress = await createProgressFactory(logger, false);
  const createProgress = (entry: string): ProgressReporter => {
    const inner = logProgress(entry);
    let total = 0;
    return {
      start(label, newTotal) {
        total = newTotal;
        inner.start(label, newTotal);
        void send({ type: 'progress', done: 0, total });
      },
      update(current, fields) {
        inner.update(current, fields);
        void send({ type: 'progress', done: current, total });
      },
      stop() {
        inner.stop();
      },
    };
  };
  const entryConfig = run.config.entries.find((e) => e.name === unit.entry);
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
    // Not `sweep`: that tag marks the one record of a whole run of a sweep (graft run --grid);
    // a queue worker records single units, of runs whose other entries other workers build.
    queue: { sweepId: plan.sweepId, run: run.index, unit: unit.id, attempt: request.job.attempt },
  };
  await writeRunRecord(store.root, record);
  const remote = await openRemoteFrom(request.remote);
  try {
    const result = await executeUnit(unit, {
      registry: defaultRegistry,
      store,
      logger,
      createProgress,
      selectBackend,
      ...(remote ? { remote: sharedArtifacts(remote, store) } : {}),
    });
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
    return { type: 'result', outcome: result.outcome, durationMs: result.durationMs, runId };
  } catch (error) {
    record.status = 'failed';
    record.error = { code: isGraftError(error) ? error.code : 'UNEXPECTED', message: error instanceof Error ? error.message : String(error), stage: unit.entry };
    throw error;
  } finally {
    remote?.close();
    record.finishedAt = new Date().toISOString();
    await writeRunRecord(store.root, record).catch((error) => logger.warn({ err: error }, 'could not write the run record'));
  }
}

process.once('message', (request: UnitChildRequest) => {
  runUnit(request)
    .catch(
      (error): UnitChildMessage => ({
        type: 'error',
        code: isGraftError(error) ? error.code : 'UNEXPECTED',
        message: error instanceof Error ? error.message : String(error),
        exitCode: isGraftError(error) ? error.exitCode : 1,
      }),
    )
    .then(async (message) => {
      finished = true;
      await send(message);
      // Log streams are synchronous; nothing else of this process is worth waiting for
      // (an evaluation thread or a socket of the S3 client would only delay the exit).
      process.disconnect();
      process.exit(0);
    });
});
