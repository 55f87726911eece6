/**
 * The queue's scheduling against a real redis-server on loopback: units of a DAG as BullMQ
 * jobs, dependants queued by the worker that finishes their last input, failures failing
 * what depends on them, a stopping worker giving its job back. The unit runner here is an
 * in-process function that records what ran (the graft binary's runner is tested black-box
 * in packages/cli/src/queue.e2e.test.ts).
 */
import { GraftError, UsageError } from '@graft/core';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectRedis, parseQueueUrl } from './connection.ts';
import { QUEUE_ERROR_CODES } from './errors.ts';
import { resolveSweepId, submitSweep, sweepStatus, unitJobId, type QueueUnit, type SweepSubmission } from './sweeps.ts';
import { REDIS_SERVER_MISSING, startRedisServer, type TestRedisServer } from './test-redis-server.ts';
import { startQueueWorker, type QueueWorker, type UnitRequest, type UnitRunner } from './worker.ts';

let server: TestRedisServer;
let connections: Redis[] = [];
let workers: QueueWorker[] = [];

async function connect(): Promise<Redis> {
  const client = await connectRedis(parseQueueUrl(server.url), 5_000);
  connections.push(client);
  return client;
}

const silent = { info() {}, warn() {}, error() {} };

/** ingest -> split -> phase-one per seed -> transplant per seed -> phase-two per (seed, lr): 2 + 2 + 2 + 4 units. */
function sweepUnits(): QueueUnit[] {
  const units: QueueUnit[] = [
    { id: 'ingest', stage: 'ingest', entry: 'ingest', key: 'k-ingest', needs: [] },
    { id: 'split', stage: 'split', entry: 'split', key: 'k-split', needs: ['ingest'] },
  ];
  for (const seed of [0, 1]) {
    units.push({ id: `p1-${seed}`, stage: 'phase-one', entry: 'phase-one', key: `k-p1-${seed}`, needs: ['split'], seeds: [seed] });
    units.push({ id: `t-${seed}`, stage: 'transplant', entry: 'transplant', key: `k-t-${seed}`, needs: [`p1-${seed}`, 'split'], seeds: [seed] });
    for (const lr of ['a', 'b']) units.push({ id: `p2-${seed}-${lr}`, stage: 'phase-two', entry: 'phase-two', key: `k-p2-${seed}-${lr}`, needs: [`t-${seed}`, 'split'], seeds: [seed] });
  }
  return units;
}

function submission(sweepId: string, overrides: Partial<SweepSubmission> = {}): SweepSubmission {
  return {
    sweepId,
    createdAt: new Date().toISOString(),
    submittedBy: { hostname: 'test', pid: process.pid },
    runs: 4,
    units: sweepUnits(),
    plan: { note: 'opaque to the queue' },
    attempts: 2,
    backoffMs: 100,
    ...overrides,
  };
}

async function worker(runUnit: UnitRunner, extra: { lockDurationMs?: number } = {}): Promise<QueueWorker> {
  const started = startQueueWorker({ connection: await connect(), queueUrl: server.url, runUnit, logger: silent, exitWhenIdle: true, idleGraceMs: 500, stalledIntervalMs: 1_000, ...extra });
  workers.push(started);
  return started;
}

/** A runner that records the order units ran in and what was done when each started. */
function recorder(fail: (request: UnitRequest) => Error | undefined = () => undefined, delayMs = 30) {
  const ran: string[] = [];
  const finished = new Set<string>();
  const violations: string[] = [];
  const runUnit: UnitRunner = async (request) => {
    ran.push(request.unit.id);
    for (const need of request.unit.needs) if (!finished.has(need)) violations.push(`${request.unit.id} started before ${need} finished`);
    await new Promise((r) => setTimeout(r, delayMs));
    const error = fail(request);
    if (error) throw error;
    finished.add(request.unit.id);
    return { outcome: 'built', durationMs: delayMs };
  };
  return { ran, violations, runUnit };
}

beforeAll(async () => {
  if (REDIS_SERVER_MISSING) return;
  server = await startRedisServer();
});

afterEach(async () => {
  await Promise.all(workers.map((w) => w.stop('release').catch(() => {})));
  workers = [];
  for (const c of connections) c.disconnect();
  connections = [];
});

afterAll(async () => {
  await server?.stop();
});

describe.skipIf(REDIS_SERVER_MISSING !== undefined)('sweeps on BullMQ', () => {
  it('two workers run every unit exactly once, each after its inputs, and drain', async () => {
    const admin = await connect();
    expect(await submitSweep(admin, submission('s1'))).toEqual({ queued: 1, retried: 0, resubmitted: false });
    const { ran, violations, runUnit } = recorder();
    const [a, b] = [await worker(runUnit), await worker(runUnit)];
    const [sa, sb] = await Promise.all([a!.done, b!.done]);
    expect(violations).toEqual([]);
    expect([...ran].sort()).toEqual(sweepUnits().map((u) => u.id).sort());
    expect(sa.reason).toBe('idle');
    expect(sa.completed + sb.completed).toBe(10);
    const status = await sweepStatus(admin, 's1');
    expect(status.finished).toBe(true);
    expect(status.counts).toMatchObject({ done: 10, active: 0, queued: 0, failed: 0, blocked: 0 });
    expect(status.units.every((u) => u.outcome === 'built' && u.worker?.pid === process.pid && u.since && u.finishedAt)).toBe(true);
  });

  it('submitting the same sweep again queues nothing new; other units under that id are refused', async () => {
    const admin = await connect();
    expect(await submitSweep(admin, submission('s1'))).toEqual({ queued: 0, retried: 0, resubmitted: true });
    await expect(submitSweep(admin, submission('s1', { units: sweepUnits().slice(0, 3) }))).rejects.toMatchObject({ code: QUEUE_ERROR_CODES.badOption, exitCode: 2 });
  });

  it('a unit that keeps failing is retried, then fails, and what needs it never runs', async () => {
    const admin = await connect();
    await submitSweep(admin, submission('s2'));
    const { ran, runUnit } = recorder((r) => (r.unit.id === 'p1-1' ? new GraftError('TEST_BOOM', `out of memory in ${r.unit.id} (attempt ${r.attempt})`) : undefined));
    const w = await worker(runUnit);
    await w.done;
    expect(ran.filter((id) => id === 'p1-1')).toHaveLength(2);
    expect(ran).not.toContain('t-1');
    const status = await sweepStatus(admin, 's2');
    expect(status.finished).toBe(true);
    expect(status.counts).toMatchObject({ done: 6, failed: 1, 'upstream-failed': 3 });
    const failed = status.units.find((u) => u.id === 'p1-1')!;
    expect(failed).toMatchObject({ state: 'failed', attemptsMade: 2, error: 'out of memory in p1-1 (attempt 2)' });
    expect(status.units.find((u) => u.id === 'p2-1-b')).toMatchObject({ state: 'upstream-failed', error: expect.stringContaining('input transplant (transplant k-t-1) failed') });

    // Submitting the sweep again retries what failed for good; this time it passes, and what needs it follows.
    expect(await submitSweep(admin, submission('s2'))).toEqual({ queued: 0, retried: 1, resubmitted: true });
    const again = recorder();
    await (await worker(again.runUnit)).done;
    expect(again.ran.sort()).toEqual(['p1-1', 'p2-1-a', 'p2-1-b', 't-1']);
    const fixed = await sweepStatus(admin, 's2');
    expect(fixed.counts).toMatchObject({ done: 10, failed: 0, 'upstream-failed': 0 });
  });

  it('bad input (a usage error) fails at once, without retries', async () => {
    const admin = await connect();
    await submitSweep(admin, submission('s3', { attempts: 5 }));
    const { ran, runUnit } = recorder((r) => (r.unit.id === 'ingest' ? new UsageError('TEST_BAD', 'the source directory does not exist') : undefined));
    await (await worker(runUnit)).done;
    expect(ran).toEqual(['ingest']);
    const status = await sweepStatus(admin, 's3');
    expect(status.units[0]).toMatchObject({ state: 'failed', attemptsMade: 1, error: 'the source directory does not exist' });
    expect(status.counts['upstream-failed']).toBe(9);
  });

  it('a worker stopped with release gives its job back; another worker finishes the sweep', async () => {
    const admin = await connect();
    await submitSweep(admin, submission('s4', { units: sweepUnits().slice(0, 3) }));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const first = await worker(async (request) => {
      started();
      await new Promise((_, reject) => request.signal.addEventListener('abort', () => reject(request.signal.reason)));
      throw new Error('unreachable');
    });
    await running;
    expect((await sweepStatus(admin, 's4')).units[0]).toMatchObject({ state: 'active' });
    await first.stop('release');
    expect(await first.done).toMatchObject({ released: 1, failed: 0 });
    expect((await sweepStatus(admin, 's4')).units[0]).toMatchObject({ state: 'queued' });
    const { ran, runUnit } = recorder();
    await (await worker(runUnit)).done;
    expect(ran).toEqual(['ingest', 'split', 'p1-0']);
    expect((await sweepStatus(admin, 's4')).counts.done).toBe(3);
  });

  it('a worker whose lock on a job is lost stops that build; the job goes back to the queue and is finished once', async () => {
    const admin = await connect();
    await submitSweep(admin, submission('s5', { units: sweepUnits().slice(0, 1) }));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    let aborted: unknown;
    const first = await worker(
      async (request) => {
        started();
        await new Promise((_, reject) =>
          request.signal.addEventListener('abort', () => {
            aborted = request.signal.reason;
            reject(request.signal.reason);
          }),
        );
        throw new Error('unreachable');
      },
      { lockDurationMs: 2_000 },
    );
    await running;
    // What another worker's stalled check does to a lock that was not renewed in time.
    expect(await admin.del(`graft:graft-units:${unitJobId('s5', { stage: 'ingest', key: 'k-ingest' })}:lock`)).toBe(1);
    await vi.waitFor(() => expect(aborted).toBeDefined(), { timeout: 10_000 });
    expect(String((aborted as Error).message)).toContain("lost the job's lock");
    await first.stop('finish');
    const { ran, runUnit } = recorder();
    await (await worker(runUnit)).done;
    expect(ran).toEqual(['ingest']);
    expect((await sweepStatus(admin, 's5')).units[0]).toMatchObject({ state: 'done' });
  });

  it('sweep ids resolve by unique prefix; unknown ones are a usage error naming what exists', async () => {
    const admin = await connect();
    expect(await resolveSweepId(admin, 's4')).toBe('s4');
    await expect(resolveSweepId(admin, 's')).rejects.toMatchObject({ code: QUEUE_ERROR_CODES.unknownSweep, message: expect.stringContaining('matches 5 sweeps') });
    await expect(resolveSweepId(admin, 'nope')).rejects.toMatchObject({ code: QUEUE_ERROR_CODES.unknownSweep, exitCode: 2, message: expect.stringContaining('Sweeps on this queue: s5, s4, s3, s2, s1') });
  });
});
