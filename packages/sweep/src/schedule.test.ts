import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactStore } from '@graft/artifacts';
import { silentProgress } from '@graft/core';
import { listRuns, readSweepRecord, type RunRecord } from '@graft/runs';
import pino from 'pino';
import { runPipeline } from '@graft/pipeline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executeUnit, type UnitResult } from './execute.ts';
import { parseGridFlag } from './grid.ts';
import { planSweep, type SweepRequest } from './plan.ts';
import { describeFailures, isChain, runPlanInParallel, runPlanInProcess, type UnitJob, type UnitPool } from './schedule.ts';
import { baselinesConfig, builds, testRegistry } from './test-stages.ts';

let root: string;
let store: ArtifactStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'graft-schedule-'));
  store = new ArtifactStore(root);
  builds.length = 0;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const silent = pino({ level: 'silent' });

/** The pool the CLI runs in child processes, here in this process: each job through executeUnit. */
class InProcessPool implements UnitPool {
  active = 0;
  maxActive = 0;
  jobs: UnitJob[] = [];
  closed: Array<'drain' | 'kill'> = [];
  private readonly running = new Set<Promise<unknown>>();
  execute(job: UnitJob): Promise<UnitResult> {
    const build = this.build(job);
    const settled = build.catch(() => undefined);
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
    return build;
  }
  private async build(job: UnitJob): Promise<UnitResult> {
    this.jobs.push(job);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      // A real build takes a while: let the scheduler see overlapping builds.
      await new Promise((resolve) => setTimeout(resolve, 20));
      return await executeUnit(job.unit, { registry: testRegistry, store, logger: silent, createProgress: () => silentProgress, selectBackend: async () => ({ backend: 'cpu', tfjsVersion: 'x' }), force: job.force });
    } finally {
      this.active--;
    }
  }
  /** Builds in this process cannot be killed: closing waits for them, as the CLI's pool waits for its processes to exit. */
  async close(how: 'drain' | 'kill'): Promise<void> {
    this.closed.push(how);
    await Promise.all(this.running);
  }
}

const plan = (over: Partial<SweepRequest> = {}) => planSweep({ raw: baselinesConfig, configPath: 'b.json', registry: testRegistry, target: 'all', ...over });

function parallel(p: Awaited<ReturnType<typeof plan>>, pool: UnitPool, over: { jobs?: number; cores?: number; signal?: AbortSignal; force?: boolean } = {}) {
  let n = 0;
  return runPlanInParallel({
    plan: p,
    store,
    registry: testRegistry,
    jobs: over.jobs ?? 2,
    cores: over.cores ?? 2,
    pool,
    logger: silent,
    loggerFor: async () => silent,
    createProgress: () => silentProgress,
    newRunId: () => `run-${n++}`,
    ...(over.signal ? { signal: over.signal } : {}),
    ...(over.force ? { force: true } : {}),
  });
}

/** Every key with the runs that record it as built (cached false). */
function builtBy(records: readonly RunRecord[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const record of records) {
    for (const stage of Object.values(record.stages)) {
      const list = out.get(stage.key) ?? [];
      if (!stage.cached) list.push(record.runId);
      out.set(stage.key, list);
    }
  }
  return out;
}

describe('runPlanInParallel', () => {
  it('builds each unit of a baselines config x 2 seeds once, two at a time, and records every run', async () => {
    const p = await plan({ seeds: [0, 1] });
    const pool = new InProcessPool();
    const { records, failures } = await parallel(p, pool);
    expect(failures).toEqual([]);
    expect(pool.jobs.map((j) => j.unit.id).sort()).toEqual(p.units.map((u) => u.id).sort());
    expect(pool.maxActive).toBe(2);
    expect(builds).toHaveLength(12);
    expect(records.map((r) => [r.runId, r.status, r.seed, r.sweep])).toEqual([
      ['run-0', 'succeeded', 0, { id: p.sweepId, index: 0, params: {} }],
      ['run-1', 'succeeded', 1, { id: p.sweepId, index: 1, params: {} }],
    ]);
    // Each key is built by exactly one run; the other records it as a cache hit.
    for (const [key, by] of builtBy(records)) expect(by, key).toHaveLength(1);
    expect(records[1]!.stages['ingest']).toMatchObject({ cached: true, key: records[0]!.stages['ingest']!.key });
    // Stage records in execution order, with each entry's params and input entries.
    expect(Object.keys(records[0]!.stages)).toEqual(['ingest', 'split', 'phase-one', 'transplant', 'phase-two', 'full-finetune', 'scratch']);
    expect(records[0]!.stages['full-finetune']).toMatchObject({ stage: 'phase-two', inputs: { model: 'transplant', data: 'split' }, params: expect.objectContaining({ trainBase: true, seed: 0 }) });
    // What graft runs ls and compare read: the records on disk, and the sweep record naming them.
    const onDisk = await listRuns(root);
    expect(onDisk.map((r) => r.runId).sort()).toEqual(['run-0', 'run-1']);
    expect(onDisk.every((r) => r.status === 'succeeded' && Object.keys(r.stages).length === 7)).toBe(true);
    const sweep = await readSweepRecord(root, p.sweepId);
    expect(sweep!.runs.map((r) => [r.runId, r.seed, r.keys['scratch']])).toEqual([
      ['run-0', 0, p.runs[0]!.entries['scratch']],
      ['run-1', 1, p.runs[1]!.entries['scratch']],
    ]);
    expect(pool.closed).toEqual(['drain']);

    // Again: everything is found in the parent, no worker is asked for anything.
    const again = new InProcessPool();
    const second = await parallel(p, again);
    expect(again.jobs).toEqual([]);
    expect(second.records.every((r) => Object.values(r.stages).every((s) => s.cached))).toBe(true);
    expect(builds).toHaveLength(12);
    // Records carry the same run-wide fields runPipeline writes run-wide fields runPipeline records (this checkout's commit when there is one).
    const serial = await runPipeline({ config: p.runs[0]!.config, configPath: 'b.json', registry: testRegistry, store, target: 'all', runId: 'serial', logger: silent, createProgress: () => silentProgress });
    expect(Object.keys(records[0]!).filter((k) => k !== 'sweep' && k !== 'finishedAt').sort()).toEqual(Object.keys(serial).filter((k) => k !== 'finishedAt').sort());
  });

  it('evaluates inline only when the builds at once fill every core', async () => {
    const p = await plan({ seeds: [0, 1] });
    const twoCores = new InProcessPool();
    await parallel(p, twoCores, { jobs: 2, cores: 2 });
    const phaseOnes = twoCores.jobs.filter((j) => j.unit.entry === 'phase-one' || j.unit.entry === 'scratch');
    expect(phaseOnes.every((j) => j.inlineEvaluation)).toBe(true);
    // The first build (ingest) runs alone: its evaluation may use the other core.
    expect(twoCores.jobs[0]!.inlineEvaluation).toBe(false);
    await rm(root, { recursive: true, force: true });
    const fourCores = new InProcessPool();
    await parallel(p, fourCores, { jobs: 2, cores: 4 });
    expect(fourCores.jobs.some((j) => j.inlineEvaluation)).toBe(false);
  });

  it('fails the dependants of a failed unit and their runs, and finishes everything else', async () => {
    const p = await plan({ grid: [parseGridFlag('phase-one.fail=[false,true]')] });
    const { records, failures } = await parallel(p, new InProcessPool());
    expect(records.map((r) => r.status)).toEqual(['succeeded', 'failed']);
    expect(records[1]!.error).toMatchObject({ code: 'BOOM', stage: 'phase-one' });
    // The failing run's scratch (no fail param set) and the shared ingest/split are still there.
    expect(Object.keys(records[1]!.stages)).toEqual(['ingest', 'split', 'scratch']);
    expect(failures.map((f) => [f.unit.entry, f.error.code, f.skipped])).toEqual([
      ['phase-one', 'BOOM', false],
      ['transplant', 'UNIT_UPSTREAM_FAILED', true],
      ['phase-two', 'UNIT_UPSTREAM_FAILED', true],
      ['full-finetune', 'UNIT_UPSTREAM_FAILED', true],
    ]);
    const error = describeFailures(failures, p.units.length);
    expect(error).toMatchObject({ code: 'UNITS_FAILED', exitCode: 1 });
    expect(error.message).toMatch(/^1 of 11 builds failed and 3 were not attempted/);
    expect(error.message).toContain('phase-one');
    expect(error.message).toContain('phase one failed on purpose');
    expect(error.message).toContain('not built because something they need failed: transplant (run 1), phase-two (run 1), full-finetune (run 1)');
  });

  it('stops on abort: kills the pool, rejects with INTERRUPTED, starts nothing more', async () => {
    const p = await plan({ seeds: [0, 1] });
    const abort = new AbortController();
    const pool = new InProcessPool();
    const execute = pool.execute.bind(pool);
    pool.execute = async (job) => {
      if (job.unit.entry === 'phase-one') abort.abort();
      return execute(job);
    };
    await expect(parallel(p, pool, { signal: abort.signal })).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(pool.closed[0]).toBe('kill');
    expect(pool.jobs.some((j) => j.unit.entry === 'phase-two')).toBe(false);
  });

  it('rebuilds with --force once per key, not once per run using it', async () => {
    const p = await plan({ seeds: [0, 1] });
    await parallel(p, new InProcessPool());
    const forced = new InProcessPool();
    await parallel(p, forced, { force: true });
    expect(forced.jobs.map((j) => j.unit.id).sort()).toEqual(p.units.map((u) => u.id).sort());
    expect(forced.jobs.every((j) => j.force)).toBe(true);
  });
});

describe('runPlanInProcess', () => {
  it('runs a chain in this process, run after run, recording what runPipeline records plus the sweep', async () => {
    const chain = await plan({ target: 'phase-two', raw: { ...baselinesConfig, entries: Object.fromEntries(Object.entries(baselinesConfig.entries).filter(([name]) => !['full-finetune', 'scratch'].includes(name))) } });
    expect(isChain(chain)).toBe(true);
    expect(isChain(await plan())).toBe(false);
    const p = await plan({ seeds: [0, 1], target: 'phase-two' });
    let n = 0;
    const finished: string[] = [];
    const { records } = await runPlanInProcess({
      plan: p,
      store,
      registry: testRegistry,
      loggerFor: async () => silent,
      createProgressFor: async () => () => silentProgress,
      selectBackend: async () => ({ backend: 'cpu', tfjsVersion: 'x' }),
      newRunId: () => `serial-${n++}`,
      onRunFinished: (record) => finished.push(record.runId),
    });
    expect(finished).toEqual(['serial-0', 'serial-1']);
    expect(records.map((r) => r.sweep?.index)).toEqual([0, 1]);
    for (const [key, by] of builtBy(records)) expect(by, key).toHaveLength(1);
    expect((await readSweepRecord(root, p.sweepId))!.runs.map((r) => r.runId)).toEqual(['serial-0', 'serial-1']);
  });
});
