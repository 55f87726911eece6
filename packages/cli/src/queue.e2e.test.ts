/**
 * Sweeps across machines, black-box (issue #12 "done when"): a real redis-server and a real
 * S3 API server (s3rver) on loopback, `graft sweep --queue` queueing 2 seeds x 2 phase-two
 * learning rates (4 runs, 10 unique builds) of a small slice of real MNIST, two
 * `graft worker` processes with separate stores sharing one remote, one of them killed with
 * SIGKILL in the middle of a phase-one training. The other takes its job over (BullMQ's
 * stalled-job recovery) and the sweep completes; the run records of both stores show every
 * artifact built exactly once; a third, empty store pulls every key and verifies.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeMnistSlice, writeTinyChain } from '@graft/testing';
import { REDIS_SERVER_MISSING, freePort, startRedisServer, type TestRedisServer } from '@graft/queue/test-redis-server';
import { startS3Server, type TestS3Server } from '@graft/remote/test-s3-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graft, lastJson, logRecords, plainLines, startGraft, waitFor, type GraftResult, type RunningGraft } from './test-support.ts';

let redis: TestRedisServer;
let s3: TestS3Server;
let work: string;
const running: RunningGraft[] = [];

const env = (): Record<string, string> => ({ ...s3.env, AWS_ENDPOINT_URL: s3.endpoint, GRAFT_QUEUE: '' });
const g = (args: string[]): Promise<GraftResult> => graft(args, work, env());
const remote = (): string => `s3://${s3.bucket}/sweep`;

/** A worker with fast lock expiry and stalled checks, so a killed worker's job comes back within seconds. */
function startWorker(store: string): RunningGraft {
  const worker = startGraft(
    ['worker', '--queue', redis.url, '--remote', remote(), '--artifacts', join(work, store), '--exit-when-idle', '--idle-seconds', '3', '--lock-duration', '4', '--stalled-interval', '2'],
    work,
    env(),
  );
  running.push(worker);
  return worker;
}

async function status(sweepId: string): Promise<any> {
  const result = await g(['sweep', 'status', sweepId, '--queue', redis.url, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return lastJson(result.stdout);
}

/** Every stage record of every run.json in a store, with the store's name. */
async function stageRecords(store: string): Promise<Array<{ store: string; stage: string; key: string; cached: boolean; pulled: boolean; status: string }>> {
  const runs = join(work, store, 'runs');
  const records = [];
  // runs/sweeps/ holds sweep records, not runs.
  for (const name of (await readdir(runs)).filter((n) => n !== 'sweeps')) {
    const record = JSON.parse(await readFile(join(runs, name, 'run.json'), 'utf8'));
    for (const stage of Object.values(record.stages) as any[]) records.push({ store, stage: stage.stage, key: stage.key, cached: stage.cached, pulled: stage.pulled === true, status: record.status });
  }
  return records;
}

beforeAll(async () => {
  if (REDIS_SERVER_MISSING) return;
  [redis, s3] = await Promise.all([startRedisServer(), startS3Server()]);
  work = await mkdtemp(join(tmpdir(), 'graft-queue-e2e-'));
  const source = await writeMnistSlice(join(work, 'idx'));
  // Phase one: 8 epochs of 4 batches (several seconds here), long enough to kill a worker in the middle of it.
  await writeTinyChain(join(work, 'sweep.json'), { source, name: 'queue-e2e', phaseOne: { epochs: 8, evalEvery: 2 } });
});

afterAll(async () => {
  await Promise.all(running.map((r) => r.kill9()));
  await Promise.all([redis?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(REDIS_SERVER_MISSING !== undefined)('graft sweep --queue / graft worker', () => {
  it('two workers with separate stores complete a 4-run sweep through one remote, one of them killed -9 mid-training; every artifact is built once', async () => {
    const submit = await g(['sweep', 'all', '-c', 'sweep.json', '--seeds', '0,1', '--grid', 'phase-two.learningRate=[0.0001,0.0003]', '--queue', redis.url, '--attempts', '2', '--backoff', '1', '--json']);
    expect(submit.code, submit.stderr).toBe(0);
    const { sweepId, runs, units, queued, retried, resubmitted } = lastJson(submit.stdout);
    expect({ runs, units, queued, retried, resubmitted }).toEqual({ runs: 4, units: 10, queued: 1, retried: 0, resubmitted: false });

    const first = startWorker('a');
    const second = startWorker('b');
    const victimPid = first.child.pid!;
    // Kill the first worker once it is some steps into a phase-one training.
    const victim = await waitFor(
      async () => {
        if (first.child.exitCode !== null) throw new Error(`worker a exited early:\n${first.output().stderr.slice(-3000)}`);
        const s = await status(sweepId);
        return s.units.find((u: any) => u.stage === 'phase-one' && u.state === 'active' && u.worker?.pid === victimPid && (u.progress?.done ?? 0) >= 2);
      },
      'worker a to be in the middle of a phase-one training',
      240_000,
      250,
    );
    await first.kill9();
    expect((await first.exited).signal).toBe('SIGKILL');

    // The second worker recovers the stalled job, finishes the sweep and exits when the queue is drained.
    const exit = await waitFor(async () => (second.child.exitCode === null ? undefined : second.child.exitCode), 'worker b to drain the queue and exit', 400_000, 500);
    expect(exit, second.output().stderr.slice(-4000)).toBe(0);

    const final = await status(sweepId);
    expect(final.finished).toBe(true);
    expect(final.counts).toMatchObject({ done: 10, failed: 0, 'upstream-failed': 0, active: 0, queued: 0 });
    const taken = final.units.find((u: any) => u.key === victim.key);
    expect(taken.worker.pid, 'the killed worker\'s unit was finished by the other worker').toBe(second.child.pid);
    expect(second.output().stderr).toContain(`took phase-one (phase-one ${victim.key.slice(0, 12)})`);

    // Exactly one build of every key across both stores; the other store's copies were pulled.
    const records = [...(await stageRecords('a')), ...(await stageRecords('b'))];
    const builds = new Map<string, number>();
    for (const r of records.filter((r) => !r.cached)) builds.set(`${r.stage}/${r.key}`, (builds.get(`${r.stage}/${r.key}`) ?? 0) + 1);
    const allKeys = final.units.map((u: any) => `${u.stage}/${u.key}`).sort();
    expect([...builds.keys()].sort()).toEqual(allKeys);
    expect([...builds.values()].every((n) => n === 1), JSON.stringify([...builds])).toBe(true);
    // Shared upstreams (ingest, split, each seed's phase one) appear once in the plan and were built once.
    expect(final.units.filter((u: any) => u.stage === 'ingest' || u.stage === 'split')).toHaveLength(2);
    expect(final.units.filter((u: any) => u.stage === 'phase-one').map((u: any) => u.seeds)).toEqual([[0], [1]]);
    // The killed worker's record of the unit it was training shows it never finished there.
    expect(records.some((r) => r.store === 'a' && r.key === victim.key)).toBe(false);

    // A third, empty store pulls every key from the remote, and everything verifies.
    const pull = await g(['artifacts', 'pull', ...final.units.map((u: any) => `${u.stage}/${u.key}`), '--remote', remote(), '--artifacts', join(work, 'c'), '--json']);
    expect(pull.code, pull.stderr).toBe(0);
    expect(lastJson(pull.stdout).artifacts.map((a: any) => a.outcome)).toEqual(Array(10).fill('downloaded'));
    const verify = await g(['artifacts', 'verify', '--artifacts', join(work, 'c')]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);

    // The same sweep run locally against the remote pulls everything, builds nothing, and records it for compare.
    const collect = await g(['run', 'all', '-c', 'sweep.json', '--seeds', '0,1', '--grid', 'phase-two.learningRate=[0.0001,0.0003]', '--remote', remote(), '--artifacts', join(work, 'f')]);
    expect(collect.code, collect.stderr.slice(-3000)).toBe(0);
    const collected = await stageRecords('f');
    expect(collected.length).toBeGreaterThan(0);
    expect(collected.filter((r) => !r.cached)).toEqual([]);
    const compare = await g(['compare', `sweep:${sweepId}`, '--artifacts', join(work, 'f')]);
    expect(compare.code, compare.stderr).toBe(0);
    expect(compare.stdout).toContain('4 of 4 runs done; seeds 0, 1');
    const compared = JSON.parse((await g(['compare', `sweep:${sweepId}`, '--artifacts', join(work, 'f'), '--json'])).stdout);
    expect(compared.variants.map((v: any) => [v.params['phase-two.learningRate'], v.metrics.find((m: any) => m.entry === 'phase-two' && m.metric === 'testAccuracy').n])).toEqual([
      [0.0001, 2],
      [0.0003, 2],
    ]);

    // Status without an id lists the sweep, finished.
    const list = await g(['sweep', 'status', '--queue', redis.url]);
    expect(list.stdout).toMatch(new RegExp(`^${sweepId} .*4 run\\(s\\)  10 units: 10 done, .* finished$`, 'm'));
  }, 900_000);

  it('the human status names states, workers and outcomes', async () => {
    const list = await g(['sweep', 'status', '--queue', redis.url, '--json']);
    const { sweeps } = lastJson(list.stdout);
    const text = await g(['sweep', 'status', sweeps[0].sweepId.slice(0, 6), '--queue', redis.url]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toContain(`sweep ${sweeps[0].sweepId}  queue-e2e all  4 run(s)`);
    expect(lines[2]).toMatch(/^STATE +STAGE +ENTRY +KEY +SEEDS +WORKER +SINCE$/);
    expect(lines.slice(3).filter((l) => /^done +phase-two +phase-two +[0-9a-f]{12} +[01] +\S+#\d+ +\d\d:\d\d:\d\d +built$/.test(l))).toHaveLength(4);
  });

  it('bad input: a bad URL, an unreachable Redis, an unknown sweep, a bad option; each exits with what to fix', async () => {
    const badUrl = await g(['sweep', 'all', '-c', 'sweep.json', '--queue', 'http://127.0.0.1:6379']);
    expect(badUrl.code).toBe(2);
    expect(plainLines(badUrl.stderr)).toEqual([expect.stringContaining('[QUEUE_BAD_URL] Invalid queue URL "http://127.0.0.1:6379": the scheme http:// is not supported')]);

    const port = await freePort();
    const started = Date.now();
    const unreachable = await g(['worker', '--queue', `redis://127.0.0.1:${port}`, '--artifacts', join(work, 'x'), '--connect-timeout', '3']);
    expect(unreachable.code).toBe(1);
    expect(plainLines(unreachable.stderr)).toEqual([expect.stringContaining(`[QUEUE_UNREACHABLE] Cannot reach Redis at redis://127.0.0.1:${port}: the connection was refused`)]);
    expect(Date.now() - started).toBeLessThan(30_000);

    const unknown = await g(['sweep', 'status', 'feedbeef', '--queue', redis.url]);
    expect(unknown.code).toBe(2);
    expect(plainLines(unknown.stderr)).toEqual([expect.stringMatching(/\[QUEUE_UNKNOWN_SWEEP\] No sweep "feedbeef" on this queue\. (Sweeps on this queue: [0-9a-f, ]+|The queue holds no sweep yet)\.$/)]);

    const noQueue = await g(['worker', '--artifacts', join(work, 'x')]);
    expect(noQueue.code).toBe(2);
    expect(plainLines(noQueue.stderr)).toEqual([expect.stringContaining('Name the queue: --queue redis://HOST:PORT (or set GRAFT_QUEUE)')]);

    const zero = await g(['worker', '--queue', redis.url, '--concurrency', '0']);
    expect(zero.code).toBe(2);
    expect(plainLines(zero.stderr)).toEqual([expect.stringContaining('--concurrency takes a whole number from 1 up, got 0')]);

    const badGrid = await g(['sweep', 'all', '-c', 'sweep.json', '--grid', 'phase-two.learningRate=[-1]', '--queue', redis.url]);
    expect(badGrid.code).toBe(2);
  });

  it('with one shared store (no remote), the worker that takes over a killed worker\'s training resumes from its checkpoint', async () => {
    const submit = await g(['sweep', 'phase-one', '-c', 'sweep.json', '--seed', '7', '--queue', redis.url, '--json']);
    expect(submit.code, submit.stderr).toBe(0);
    const { sweepId } = lastJson(submit.stdout);
    const shared = join(work, 'shared');
    const start = (): RunningGraft => {
      const worker = startGraft(['worker', '--queue', redis.url, '--artifacts', shared, '--exit-when-idle', '--idle-seconds', '3', '--lock-duration', '4', '--stalled-interval', '2'], work, env());
      running.push(worker);
      return worker;
    };
    const workers = [start(), start()];
    // Kill whichever worker trains phase one, once its first epoch checkpoint is on disk.
    const unit = await waitFor(
      async () => {
        const s = await status(sweepId);
        const p1 = s.units.find((u: any) => u.stage === 'phase-one' && u.state === 'active');
        if (!p1) return undefined;
        const checkpoint = join(shared, '.checkpoints', 'phase-one', p1.key, 'training.ckpt');
        return (await readFile(checkpoint).then(() => true, () => false)) ? p1 : undefined;
      },
      'a phase-one checkpoint in the shared store',
      240_000,
      250,
    );
    const victim = workers.find((w) => w.child.pid === unit.worker.pid)!;
    const survivor = workers.find((w) => w !== victim)!;
    const killedAt = Date.now();
    await victim.kill9();
    expect(await survivor.exited).toMatchObject({ code: 0 });
    // How long the job stayed with the dead worker (lock 4 s, stalled check every 2 s): printed, not asserted (a busy machine).
    const retook = logRecords(survivor.output().stderr).find((r) => String(r.msg).startsWith(`took phase-one (phase-one ${unit.key.slice(0, 12)})`) && r.time >= killedAt);
    expect(retook, 'the survivor took the killed worker\'s unit').toBeDefined();
    console.log(`stalled-job recovery: the survivor took the unit ${((retook!.time - killedAt) / 1000).toFixed(1)} s after the kill (--lock-duration 4 --stalled-interval 2)`);
    const final = await status(sweepId);
    expect(final.units.find((u: any) => u.key === unit.key)).toMatchObject({ state: 'done', outcome: 'built', worker: { pid: survivor.child.pid } });
    const metrics = JSON.parse(await readFile(join(shared, 'phase-one', unit.key, 'metrics.json'), 'utf8'));
    expect(metrics.resumedAfterEpoch, 'the retry resumed from the killed worker\'s checkpoint').toBeGreaterThanOrEqual(1);
    expect(metrics.steps).toBe(32);
  }, 400_000);

  it('SIGTERM mid-training gives the unit back to the queue (not a failed attempt) and exits 0', async () => {
    // Another sweep (a longer phase one); ingest and split come from the remote.
    const submit = await g(['sweep', 'phase-one', '-c', 'sweep.json', '--seed', '5', '--set', 'phase-one.epochs=40', '--queue', redis.url, '--json']);
    expect(submit.code, submit.stderr).toBe(0);
    const { sweepId } = lastJson(submit.stdout);
    const worker = startWorker('d');
    const unit = await waitFor(
      async () => {
        if (worker.child.exitCode !== null) throw new Error(`worker d exited early:\n${worker.output().stderr.slice(-3000)}`);
        const s = await status(sweepId);
        return s.units.find((u: any) => u.stage === 'phase-one' && u.state === 'active' && (u.progress?.done ?? 0) >= 1);
      },
      'worker d to train phase one',
      240_000,
      250,
    );
    process.kill(worker.child.pid!, 'SIGTERM');
    const exit = await worker.exited;
    expect(exit.code, worker.output().stderr.slice(-3000)).toBe(0);
    const after = await status(sweepId);
    expect(after.units.find((u: any) => u.key === unit.key)).toMatchObject({ state: 'queued', attemptsMade: 0 });
    // ingest and split: pulled from the remote when the first test has run, built otherwise.
    expect(after.units.filter((u: any) => u.stage !== 'phase-one').map((u: any) => u.state)).toEqual(['done', 'done']);
    expect(worker.output().stderr).toContain(`gave back phase-one (phase-one ${unit.key.slice(0, 12)}) to the queue`);
  }, 400_000);

  it('a worker whose Redis goes away exits 1 after --redis-lost-timeout, saying so', async () => {
    const own = await startRedisServer();
    try {
      const worker = startGraft(['worker', '--queue', own.url, '--artifacts', join(work, 'e'), '--redis-lost-timeout', '3'], work, env());
      running.push(worker);
      await waitFor(async () => (worker.output().stderr.includes('taking units from') ? true : undefined), 'the worker to start', 60_000, 100);
      await own.stop();
      const exit = await worker.exited;
      expect(exit.code).toBe(1);
      expect(plainLines(worker.output().stderr)).toEqual([`graft: [QUEUE_UNREACHABLE] Lost Redis at ${own.url} for more than 3 s; stopping. Jobs this worker held go back to the queue once their locks expire.`]);
    } finally {
      await own.stop();
    }
  }, 120_000);
});
