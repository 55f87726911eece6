/**
 * A sweep on the queue: its units as BullMQ jobs, its plan and progress in Redis.
 *
 * How a sweep's DAG runs on a flat queue, and why it survives kill -9 anywhere:
 *
 * - One job per unit (a unit = one artifact key to materialise, deduplicated across the
 *   sweep's runs by the planner), with the job id `<sweep>.<stage>.<key>`. BullMQ never adds
 *   a second job under an id it holds, so every enqueue below is idempotent: whoever adds
 *   a unit, however often, it is queued once, and one worker at a time holds it (BullMQ's
 *   lock). A shared upstream (ingest, split, one seed's phase one) is built once per sweep.
 * - Only units whose inputs all exist are queued; the rest wait in the plan. `submitSweep`
 *   queues the roots. The worker that finishes a unit, *before* its job completes, adds the
 *   unit to the sweep's done set (SADD) and then queues every dependant whose inputs are
 *   all in that set. Two workers finishing the two inputs of one dependant at once each
 *   SADD first and check second, so the later one always sees both (Redis runs commands in
 *   order); both may add the dependant, and the job id makes that one job.
 * - A worker killed before its job completes leaves the job active with a lock that stops
 *   being renewed: BullMQ's stalled-job check (in every other live worker) puts it back in
 *   wait, and the next worker redoes the unit. If the first worker had built and pushed the
 *   artifact, the redo pulls it (the runner looks at the remote before building) and
 *   repeats the SADD and the enqueues, which are idempotent. Nothing is lost between
 *   "built" and "dependants queued", because the job completes only after both.
 * - BullMQ flows were the alternative; a flow is a tree (a child has one parent), and a
 *   sweep is a DAG (one split feeds every run), so shared upstreams would need a copy per
 *   parent or a second bookkeeping anyway.
 *
 * Redis keys (beside BullMQ's own under the same prefix):
 *   <prefix>:sweeps                 ZSET sweep id -> submission time (ms)
 *   <prefix>:sweep:<id>             STRING the submission (JSON): units, plan, job options
 *   <prefix>:sweep:<id>:done        SET unit ids whose artifact exists (built or found)
 */
import { hostname } from 'node:os';
import { UsageError } from '@graft/core';
import { Queue, type Job, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_ERROR_CODES } from './errors.ts';

/** The BullMQ queue every graft worker takes units from. */
export const QUEUE_NAME = 'graft-units';
/** BullMQ's key prefix for graft's queue, and the prefix of graft's own keys. */
export const KEY_PREFIX = 'graft';

/** One unit of a sweep as the queue sees it: an artifact to materialise once its inputs exist. */
export interface QueueUnit {
  /** Unique within the sweep (the planner's unit id). */
  id: string;
  stage: string;
  /** The config entry it comes from (for people: status, logs). */
  entry: string;
  /** The artifact key. */
  key: string;
  /** Ids of the units whose artifacts it reads. */
  needs: string[];
  /** Seeds of the sweep's runs that use it (a shared upstream serves several). */
  seeds?: number[];
}

/** What `graft sweep --queue` stores: enough for any worker, on any machine, to run any unit. */
export interface SweepSubmission {
  sweepId: string;
  createdAt: string;
  submittedBy: { hostname: string; pid: number };
  /** The config's name and path as given, for status lines. */
  configName?: string;
  target?: string;
  runs: number;
  units: QueueUnit[];
  /** The planner's plan, opaque to the queue; handed to the unit executor. */
  plan: unknown;
  /** Retries of a failing unit (BullMQ attempts) and the first backoff (exponential). */
  attempts: number;
  backoffMs: number;
}

/** The data of one job. */
export interface UnitJobData {
  sweepId: string;
  unitId: string;
  stage: string;
  entry: string;
  key: string;
}

/** What a unit's job returns (and BullMQ keeps as its return value). */
export interface UnitOutcome {
  outcome: 'built' | 'pulled' | 'cached';
  durationMs: number;
  worker: WorkerIdentity;
  runId?: string;
}

export interface WorkerIdentity {
  hostname: string;
  pid: number;
}

/** Progress a worker stores on the job it holds: who, since when, how far. */
export interface UnitProgress {
  worker: WorkerIdentity;
  startedAt: string;
  attempt: number;
  /** Steps done / total of the current training, when the stage reports them. */
  done?: number;
  total?: number;
}

export const sweepKey = (sweepId: string): string => `${KEY_PREFIX}:sweep:${sweepId}`;
const doneKey = (sweepId: string): string => `${KEY_PREFIX}:sweep:${sweepId}:done`;
const SWEEPS_KEY = `${KEY_PREFIX}:sweeps`;

/** BullMQ job ids may not contain ':' and may not be integers; graft's ids and keys never do either, this makes sure. */
export function unitJobId(sweepId: string, unit: Pick<QueueUnit, 'stage' | 'key'>): string {
  const clean = (s: string): string => s.replace(/[^A-Za-z0-9_.-]/g, '_');
  return `${clean(sweepId)}.${clean(unit.stage)}.${clean(unit.key)}`;
}

export function openQueue(connection: Redis): Queue<UnitJobData, UnitOutcome> {
  return new Queue<UnitJobData, UnitOutcome>(QUEUE_NAME, { connection, prefix: KEY_PREFIX });
}

function jobOptions(submission: SweepSubmission, unit: QueueUnit): JobsOptions {
  return {
    jobId: unitJobId(submission.sweepId, unit),
    attempts: submission.attempts,
    backoff: { type: 'exponential', delay: submission.backoffMs },
    // Finished jobs stay: their state is the sweep's record (status, done), and a kept id
    // is what keeps a second enqueue of the same unit from running it again.
    removeOnComplete: false,
    removeOnFail: false,
  };
}

async function enqueue(queue: Queue<UnitJobData, UnitOutcome>, submission: SweepSubmission, unit: QueueUnit): Promise<void> {
  await queue.add(`${unit.entry}`, { sweepId: submission.sweepId, unitId: unit.id, stage: unit.stage, entry: unit.entry, key: unit.key }, jobOptions(submission, unit));
}

/** Checks the units form a DAG over their own ids (the planner's job; a damaged plan must not reach the queue). */
function checkUnits(units: QueueUnit[]): void {
  const ids = new Set(units.map((u) => u.id));
  if (ids.size !== units.length) throw new Error('the sweep plan has two units with one id');
  for (const unit of units) {
    for (const need of unit.needs) if (!ids.has(need)) throw new Error(`unit ${unit.id} needs ${need}, which is not in the plan`);
  }
}

/**
 * Stores the sweep and queues every unit whose inputs exist (at first, the roots). Submitting
 * the same sweep id again with the same units queues what is ready and not queued yet (so an
 * interrupted submission can simply be repeated) and retries the units that failed for good,
 * whose dependants then follow as usual; with other units under that id it is refused.
 * `queued` counts units added (or found already queued), `retried` failed ones put back.
 */
export async function submitSweep(connection: Redis, submission: SweepSubmission): Promise<{ queued: number; retried: number; resubmitted: boolean }> {
  checkUnits(submission.units);
  const stored = await connection.set(sweepKey(submission.sweepId), JSON.stringify(submission), 'NX');
  let resubmitted = false;
  let effective = submission;
  if (stored === null) {
    effective = (await loadSweep(connection, submission.sweepId))!;
    const same = JSON.stringify(effective.units) === JSON.stringify(submission.units);
    if (!same) {
      throw new UsageError(QUEUE_ERROR_CODES.badOption, `The queue already holds a sweep ${submission.sweepId} with other units. Submit this one under another id.`);
    }
    resubmitted = true;
  }
  await connection.zadd(SWEEPS_KEY, 'NX', Date.parse(effective.createdAt), effective.sweepId);
  const done = new Set(await connection.smembers(doneKey(effective.sweepId)));
  const queue = openQueue(connection);
  let queued = 0;
  let retried = 0;
  try {
    for (const unit of effective.units) {
      if (done.has(unit.id) || !unit.needs.every((need) => done.has(need))) continue;
      // Submitting again is how a user retries units that failed for good (after fixing the
      // cause): their kept failed jobs would otherwise block the same job id forever.
      const existing = resubmitted ? await queue.getJob(unitJobId(effective.sweepId, unit)) : undefined;
      if (existing && (await existing.getState()) === 'failed') {
        await existing.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        retried += 1;
        continue;
      }
      await enqueue(queue, effective, unit);
      queued += 1;
    }
  } finally {
    await queue.close();
  }
  return { queued, retried, resubmitted };
}

export async function loadSweep(connection: Redis, sweepId: string): Promise<SweepSubmission | undefined> {
  const text = await connection.get(sweepKey(sweepId));
  return text === null ? undefined : (JSON.parse(text) as SweepSubmission);
}

/** Sweep ids on the queue, newest first. */
export async function listSweepIds(connection: Redis): Promise<string[]> {
  return connection.zrevrange(SWEEPS_KEY, 0, -1);
}

/** The one sweep whose id is `ref` or starts with it; a usage error naming what exists otherwise. */
export async function resolveSweepId(connection: Redis, ref: string): Promise<string> {
  const ids = await listSweepIds(connection);
  if (ids.includes(ref)) return ref;
  const matches = ids.filter((id) => id.startsWith(ref));
  if (matches.length === 1) return matches[0]!;
  const known = ids.length === 0 ? 'The queue holds no sweep yet.' : `Sweeps on this queue: ${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ', ...' : ''}.`;
  if (matches.length > 1) throw new UsageError(QUEUE_ERROR_CODES.unknownSweep, `"${ref}" matches ${matches.length} sweeps (${matches.slice(0, 5).join(', ')}); give more of the id.`);
  throw new UsageError(QUEUE_ERROR_CODES.unknownSweep, `No sweep "${ref}" on this queue. ${known}`);
}

/**
 * Records that `unit` exists and queues every dependant whose inputs all do. Called by the
 * worker while it still holds the unit's job (see the file comment for why that order).
 */
export async function markDoneAndQueueDependants(queue: Queue<UnitJobData, UnitOutcome>, connection: Redis, submission: SweepSubmission, unitId: string): Promise<string[]> {
  await connection.sadd(doneKey(submission.sweepId), unitId);
  const dependants = submission.units.filter((u) => u.needs.includes(unitId));
  if (dependants.length === 0) return [];
  const queued: string[] = [];
  for (const dependant of dependants) {
    const present = await connection.smismember(doneKey(submission.sweepId), ...dependant.needs);
    if (present.every((flag) => flag === 1)) {
      await enqueue(queue, submission, dependant);
      queued.push(dependant.id);
    }
  }
  return queued;
}

export function workerIdentity(): WorkerIdentity {
  return { hostname: hostname(), pid: process.pid };
}

/** A unit's state in the sweep: BullMQ's job state, or where it waits when it has no job yet. */
export type UnitState = 'done' | 'active' | 'queued' | 'retrying' | 'failed' | 'blocked' | 'upstream-failed';
export const UNIT_STATES: readonly UnitState[] = ['done', 'active', 'queued', 'retrying', 'failed', 'upstream-failed', 'blocked'];

export interface UnitStatus {
  id: string;
  stage: string;
  entry: string;
  key: string;
  seeds?: number[];
  state: UnitState;
  jobId: string;
  /** Who runs it (active) or ran it (done, failed): from the job's progress and return value. */
  worker?: WorkerIdentity;
  /** When the current (or last) attempt started. */
  since?: string;
  finishedAt?: string;
  attemptsMade?: number;
  /** done: built here, pulled from the remote, or found in the worker's store. */
  outcome?: UnitOutcome['outcome'];
  progress?: { done: number; total: number };
  /** failed: the job's last error; upstream-failed: which unit failed. */
  error?: string;
}

export interface SweepStatus {
  sweepId: string;
  createdAt: string;
  submittedBy: WorkerIdentity;
  configName?: string;
  target?: string;
  runs: number;
  counts: Record<UnitState, number>;
  /** Every unit is done, or failed, or cannot run because an input failed. */
  finished: boolean;
  units: UnitStatus[];
}

function stateOfJob(state: string): UnitState {
  switch (state) {
    case 'completed':
      return 'done';
    case 'active':
      return 'active';
    case 'failed':
      return 'failed';
    case 'delayed':
      // A failed attempt waiting out its backoff (graft never queues delayed jobs otherwise).
      return 'retrying';
    default:
      // waiting, prioritized, waiting-children, paused, unknown while being added.
      return 'queued';
  }
}

/** The sweep's state, read from BullMQ's jobs (the source of truth) and the plan. */
export async function sweepStatus(connection: Redis, sweepId: string): Promise<SweepStatus> {
  const submission = await loadSweep(connection, sweepId);
  if (!submission) throw new UsageError(QUEUE_ERROR_CODES.unknownSweep, `No sweep "${sweepId}" on this queue.`);
  const queue = openQueue(connection);
  const byId = new Map<string, UnitStatus>();
  try {
    const jobs = await Promise.all(submission.units.map((unit) => queue.getJob(unitJobId(sweepId, unit)) as Promise<Job<UnitJobData, UnitOutcome> | undefined>));
    const states = await Promise.all(jobs.map((job) => (job ? job.getState() : Promise.resolve('none'))));
    submission.units.forEach((unit, index) => {
      const job = jobs[index];
      const base: UnitStatus = {
        id: unit.id,
        stage: unit.stage,
        entry: unit.entry,
        key: unit.key,
        ...(unit.seeds ? { seeds: unit.seeds } : {}),
        state: 'blocked',
        jobId: unitJobId(sweepId, unit),
      };
      if (!job) {
        byId.set(unit.id, base);
        return;
      }
      const state = stateOfJob(states[index]!);
      const progress = (typeof job.progress === 'object' ? job.progress : undefined) as Partial<UnitProgress> | undefined;
      const result = state === 'done' ? (job.returnvalue as UnitOutcome | null) : null;
      const worker = result?.worker ?? (state === 'active' || state === 'failed' ? progress?.worker : undefined);
      byId.set(unit.id, {
        ...base,
        state,
        ...(worker ? { worker } : {}),
        ...(job.processedOn ? { since: new Date(job.processedOn).toISOString() } : {}),
        ...(job.finishedOn && (state === 'done' || state === 'failed') ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
        attemptsMade: job.attemptsMade,
        ...(result?.outcome ? { outcome: result.outcome } : {}),
        ...(state === 'active' && progress?.total ? { progress: { done: progress.done ?? 0, total: progress.total } } : {}),
        ...((state === 'failed' || state === 'retrying') && job.failedReason ? { error: job.failedReason } : {}),
      });
    });
  } finally {
    await queue.close();
  }
  // A unit without a job whose input failed (or cannot run) will never run: say which.
  const order = submission.units;
  for (let changed = true; changed; ) {
    changed = false;
    for (const unit of order) {
      const status = byId.get(unit.id)!;
      if (status.state !== 'blocked') continue;
      const failed = unit.needs.find((need) => ['failed', 'upstream-failed'].includes(byId.get(need)!.state));
      if (failed) {
        const upstream = byId.get(failed)!;
        status.state = 'upstream-failed';
        status.error = `input ${upstream.entry} (${upstream.stage} ${upstream.key.slice(0, 12)}) failed`;
        changed = true;
      }
    }
  }
  const units = order.map((unit) => byId.get(unit.id)!);
  const counts = Object.fromEntries(UNIT_STATES.map((s) => [s, 0])) as Record<UnitState, number>;
  for (const unit of units) counts[unit.state] += 1;
  return {
    sweepId,
    createdAt: submission.createdAt,
    submittedBy: submission.submittedBy,
    ...(submission.configName ? { configName: submission.configName } : {}),
    ...(submission.target ? { target: submission.target } : {}),
    runs: submission.runs,
    counts,
    finished: counts.done + counts.failed + counts['upstream-failed'] === units.length,
    units,
  };
}
