/**
 * `graft worker`: a BullMQ worker that takes one unit per job and hands it to a unit runner
 * (the CLI's: a child process running @graft/sweep's executor against the worker's store
 * and remote). The worker process itself only holds the job: its event loop stays free
 * for BullMQ's lock renewals while training runs elsewhere, so a long synchronous stretch
 * of training never makes a live worker look stalled.
 */
import { GraftError, isGraftError } from '@graft/core';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_ERROR_CODES } from './errors.ts';
import {
  KEY_PREFIX,
  QUEUE_NAME,
  loadSweep,
  markDoneAndQueueDependants,
  openQueue,
  workerIdentity,
  type QueueUnit,
  type SweepSubmission,
  type UnitJobData,
  type UnitOutcome,
  type UnitProgress,
  type WorkerIdentity,
} from './sweeps.ts';

/** The log calls the worker makes (a pino Logger fits). */
export interface QueueLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export interface UnitRequest {
  submission: SweepSubmission;
  unit: QueueUnit;
  /** 1 for the first try; a retry after a failure or a stall counts up. */
  attempt: number;
  /** Aborted when the job must stop: the worker gives it back, or lost its lock. */
  signal: AbortSignal;
  /** Steps done out of total, stored on the job for `graft sweep status` (throttled here). */
  onProgress(done: number, total: number): void;
}

/** Materialises one unit; resolves once its artifact is in the worker's store (and on the remote). */
export type UnitRunner = (request: UnitRequest) => Promise<{ outcome: UnitOutcome['outcome']; durationMs: number; runId?: string }>;

export interface QueueWorkerOptions {
  /** A connected client (connectRedis); the worker duplicates it for BullMQ's blocking reads. */
  connection: Redis;
  /** For messages: where the queue lives. */
  queueUrl: string;
  runUnit: UnitRunner;
  logger: QueueLogger;
  /** Units this worker runs at once (default 1: one compute backend per process). */
  concurrency?: number;
  /** A job's lock lasts this long unless renewed (every half of it); a dead worker's job is taken back after it. */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs (of dead workers). */
  stalledIntervalMs?: number;
  /** How often one job may be recovered from a stall before it fails. */
  maxStalledCount?: number;
  /** Stop (exit 0) once the queue has nothing waiting, delayed or active, for idleGraceMs. */
  exitWhenIdle?: boolean;
  idleGraceMs?: number;
  /** Give up (QUEUE_UNREACHABLE) when Redis stays unreachable this long. */
  redisLostTimeoutMs?: number;
}

export interface WorkerSummary {
  completed: number;
  failed: number;
  released: number;
  /** Why the worker stopped. */
  reason: 'idle' | 'stopped' | 'redis-lost';
}

export interface QueueWorker {
  readonly identity: WorkerIdentity;
  /**
   * Stops taking jobs. 'finish' lets the running units end first; 'release' stops them and
   * gives their jobs back to the queue at once (another worker takes them, resuming from a
   * checkpoint when the store is shared).
   */
  stop(mode: 'finish' | 'release'): Promise<void>;
  /** Resolves when the worker has stopped; rejects with QUEUE_UNREACHABLE when Redis was lost for good. */
  readonly done: Promise<WorkerSummary>;
}

interface ActiveUnit {
  job: Job<UnitJobData, UnitOutcome>;
  token: string;
  controller: AbortController;
  releasing: boolean;
}

const PROGRESS_EVERY_MS = 2_000;

export function startQueueWorker(options: QueueWorkerOptions): QueueWorker {
  const { connection, logger } = options;
  const identity = workerIdentity();
  const lockDuration = options.lockDurationMs ?? 30_000;
  const queue = openQueue(connection);
  const sweeps = new Map<string, SweepSubmission>();
  const active = new Map<string, ActiveUnit>();
  const summary: WorkerSummary = { completed: 0, failed: 0, released: 0, reason: 'stopped' };

  async function submissionFor(sweepId: string): Promise<SweepSubmission | undefined> {
    let submission = sweeps.get(sweepId);
    if (!submission) {
      submission = await loadSweep(connection, sweepId);
      if (submission) sweeps.set(sweepId, submission);
    }
    return submission;
  }

  async function processUnit(job: Job<UnitJobData, UnitOutcome>, token: string | undefined): Promise<UnitOutcome> {
    const { sweepId, unitId } = job.data;
    const submission = await submissionFor(sweepId);
    if (!submission) throw new UnrecoverableError(`[${QUEUE_ERROR_CODES.badJob}] sweep ${sweepId} is no longer on the queue (its plan was removed); job ${job.id} cannot run.`);
    const unit = submission.units.find((u) => u.id === unitId);
    if (!unit) throw new UnrecoverableError(`[${QUEUE_ERROR_CODES.badJob}] sweep ${sweepId} has no unit ${unitId}; job ${job.id} cannot run.`);
    // attemptsMade counts finished failed attempts; a stall does not count there, stalledCounter does.
    const attempt = job.attemptsMade + job.stalledCounter + 1;
    const startedAt = new Date().toISOString();
    const base: UnitProgress = { worker: identity, startedAt, attempt };
    await job.updateProgress(base);
    const controller = new AbortController();
    const entry: ActiveUnit = { job, token: token ?? '', controller, releasing: false };
    active.set(job.id!, entry);
    const fields = { sweep: sweepId, job: job.id, stage: unit.stage, entry: unit.entry, key: unit.key.slice(0, 12), attempt };
    logger.info(fields, `took ${unit.entry} (${unit.stage} ${unit.key.slice(0, 12)}) of sweep ${sweepId}${attempt > 1 ? `, attempt ${attempt}` : ''}`);
    let lastProgress = 0;
    try {
      const result = await options.runUnit({
        submission,
        unit,
        attempt,
        signal: controller.signal,
        onProgress: (done, total) => {
          const now = Date.now();
          if (now - lastProgress < PROGRESS_EVERY_MS && done < total) return;
          lastProgress = now;
          job.updateProgress({ ...base, done, total }).catch(() => {});
        },
      });
      // Before the job completes (see sweeps.ts): a kill from here on is redone by another worker.
      const queued = await markDoneAndQueueDependants(queue, connection, submission, unit.id);
      summary.completed += 1;
      logger.info({ ...fields, outcome: result.outcome, durationMs: result.durationMs, queued }, `${result.outcome} ${unit.entry} (${unit.stage} ${unit.key.slice(0, 12)}) in ${(result.durationMs / 1000).toFixed(1)} s${queued.length ? `; queued ${queued.length} unit(s) that needed it` : ''}`);
      return { ...result, worker: identity };
    } catch (error) {
      if (entry.releasing) {
        // Given back on purpose: to wait, without counting as a failed attempt.
        await job.moveToWait(token);
        summary.released += 1;
        logger.warn(fields, `gave back ${unit.entry} (${unit.stage} ${unit.key.slice(0, 12)}) to the queue`);
        throw new WaitingError();
      }
      if (controller.signal.aborted) {
        // Lost lock or lost Redis: the job is no longer ours; BullMQ's stalled check gives it to a worker.
        const reason = controller.signal.reason instanceof Error ? controller.signal.reason.message : String(controller.signal.reason);
        logger.warn(fields, `stopped ${unit.entry} (${unit.stage} ${unit.key.slice(0, 12)}): ${reason}`);
        throw controller.signal.reason instanceof Error ? controller.signal.reason : new Error(reason);
      }
      const message = error instanceof Error ? error.message : String(error);
      const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      // Bad input (exit 2: a config the stage refuses) fails the same way on every try.
      const permanent = isGraftError(error) && error.exitCode === 2;
      logger.error({ ...fields, err: message }, `${unit.entry} (${unit.stage} ${unit.key.slice(0, 12)}) failed${permanent || last ? '; no attempts left, units that need it will not run' : `; it will be retried`}: ${message}`);
      summary.failed += permanent || last ? 1 : 0;
      throw permanent ? new UnrecoverableError(message) : error instanceof Error ? error : new Error(message);
    } finally {
      active.delete(job.id!);
    }
  }

  const worker = new Worker<UnitJobData, UnitOutcome>(QUEUE_NAME, processUnit, {
    connection,
    prefix: KEY_PREFIX,
    name: `${identity.hostname}#${identity.pid}`,
    concurrency: options.concurrency ?? 1,
    lockDuration,
    stalledInterval: options.stalledIntervalMs ?? 30_000,
    maxStalledCount: options.maxStalledCount ?? 2,
    // Short long-polls, so an idle worker notices the end of a sweep and a stop request quickly.
    drainDelay: 1,
    autorun: true,
  });

  let lastRedisError = '';
  const reportRedisError = (error: unknown): void => {
    const message = error instanceof Error ? error.message : String(error);
    // ioredis reports every failed reconnect; one line per distinct message is enough.
    if (message !== lastRedisError) logger.warn({ err: message }, `queue: ${message}`);
    lastRedisError = message;
  };
  // Without a listener BullMQ prints every connection error with its stack.
  queue.on('error', reportRedisError);
  worker.on('error', (error) => {
    const message = error instanceof Error ? error.message : String(error);
    // The lock is gone (another worker's stalled check gave the job away): stop building it here.
    const lost = /could not renew lock for job (.+)$/.exec(message);
    if (lost) {
      const unit = active.get(lost[1]!);
      if (unit && !unit.controller.signal.aborted) {
        logger.warn({ job: lost[1] }, `lost the lock of job ${lost[1]} (another worker will redo it); stopping it here`);
        unit.controller.abort(new GraftError(QUEUE_ERROR_CODES.unitFailed, `lost the job's lock`));
      }
      return;
    }
    reportRedisError(error);
  });

  let stopping: Promise<void> | undefined;
  let resolveDone!: (summary: WorkerSummary) => void;
  let rejectDone!: (error: unknown) => void;
  const done = new Promise<WorkerSummary>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });

  async function stop(mode: 'finish' | 'release', reason: WorkerSummary['reason'] = 'stopped', failure?: GraftError): Promise<void> {
    if (mode === 'release') {
      for (const unit of active.values()) {
        unit.releasing = true;
        unit.controller.abort(new GraftError(QUEUE_ERROR_CODES.unitFailed, 'the worker is stopping'));
      }
    }
    stopping ??= (async () => {
      clearInterval(monitor);
      summary.reason = reason;
      await worker.close(reason === 'redis-lost');
      await queue.close().catch(() => {});
      if (failure) rejectDone(failure);
      else resolveDone(summary);
    })();
    return stopping;
  }

  // Idle and connection watch, once a second.
  let idleSince: number | undefined;
  let lostSince: number | undefined;
  let checking = false;
  const monitor = setInterval(() => {
    if (checking || stopping) return;
    checking = true;
    (async () => {
      if (connection.status !== 'ready') {
        if (lostSince === undefined) logger.warn({}, `lost the connection to Redis at ${options.queueUrl}; reconnecting (giving up after ${Math.round((options.redisLostTimeoutMs ?? 60_000) / 1000)} s)`);
        lostSince ??= Date.now();
        const limit = options.redisLostTimeoutMs ?? 60_000;
        if (Date.now() - lostSince > limit) {
          const error = new GraftError(QUEUE_ERROR_CODES.unreachable, `Lost Redis at ${options.queueUrl} for more than ${Math.round(limit / 1000)} s; stopping. Jobs this worker held go back to the queue once their locks expire.`);
          logger.error({}, error.message);
          for (const unit of active.values()) unit.controller.abort(error);
          await stop('finish', 'redis-lost', error);
        }
        return;
      }
      if (lostSince !== undefined) logger.info({}, `reconnected to Redis at ${options.queueUrl}`);
      lostSince = undefined;
      lastRedisError = '';
      if (!options.exitWhenIdle) return;
      if (active.size > 0) {
        idleSince = undefined;
        return;
      }
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
      const pending = Object.values(counts).reduce((sum, n) => sum + n, 0);
      if (pending > 0) {
        idleSince = undefined;
        return;
      }
      idleSince ??= Date.now();
      if (Date.now() - idleSince >= (options.idleGraceMs ?? 3_000)) {
        logger.info({ ...summary }, `the queue is drained (nothing waiting, delayed or running); stopping`);
        await stop('finish', 'idle');
      }
    })()
      .catch((error) => logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'queue check failed'))
      .finally(() => (checking = false));
  }, 1_000);

  logger.info(
    { queue: options.queueUrl, worker: identity, concurrency: options.concurrency ?? 1, lockDurationMs: lockDuration },
    `worker ${identity.hostname}#${identity.pid} taking units from ${options.queueUrl}`,
  );
  return { identity, stop: (mode) => stop(mode), done };
}
