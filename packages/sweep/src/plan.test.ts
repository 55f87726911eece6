import { ConfigError } from '@graft/pipeline';
import { describe, expect, it } from 'vitest';
import { parseGridFlag, parseJobs } from './grid.ts';
import { planSweep, type SweepRequest } from './plan.ts';
import { baselinesConfig, testRegistry } from './test-stages.ts';

const request = (over: Partial<SweepRequest> = {}): SweepRequest => ({ raw: baselinesConfig, configPath: 'baselines.json', registry: testRegistry, target: 'all', ...over });

/** The problems of the ConfigError a plan throws, as `path: message` lines. */
async function problemsOf(over: Partial<SweepRequest>): Promise<string[]> {
  const error = await planSweep(request(over)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).exitCode).toBe(2);
  return (error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
}

describe('parseGridFlag', () => {
  it('reads entry.param=[JSON values], nested lists and bare words', () => {
    expect(parseGridFlag('phase-two.learningRate=[1e-4,3e-4]')).toEqual({ source: '--grid phase-two.learningRate=[1e-4,3e-4]', key: 'phase-two.learningRate', values: [1e-4, 3e-4] });
    expect(parseGridFlag('split.holdout=[[9],[8,9]]').values).toEqual([[9], [8, 9]]);
    expect(parseGridFlag('scratch.dataset=[phase-one, phase-two]').values).toEqual(['phase-one', 'phase-two']);
    expect(parseGridFlag('phase-two.trainBase=[true,false]').values).toEqual([true, false]);
    expect(parseGridFlag('phase-two.epochs=[]').values).toEqual([]);
  });

  it.each([
    ['phase-two.learningRate', /no "=" between/],
    ['learningRate=[1,2]', /names no param; name it entry.param/],
    ['phase-two.learningRate=3e-4', /is one value, not a list; use \[3e-4\]/],
    ['phase-two.learningRate=[1,[2]', /is not a JSON list/],
    ['phase-two.learningRate={"a":1}', /one value, not a list/],
  ])('refuses %j naming the flag, exit 2', (text, why) => {
    let error: unknown;
    try {
      parseGridFlag(text);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'SWEEP_BAD_GRID', exitCode: 2 });
    expect((error as Error).message).toContain(`--grid ${text}`);
    expect((error as Error).message).toMatch(why);
  });
});

describe('parseJobs', () => {
  it('takes whole numbers from 1 up', () => {
    expect(parseJobs('1')).toBe(1);
    expect(parseJobs(4)).toBe(4);
  });
  it.each(['0', '-1', '1.5', 'two', '', 'NaN', '1e3', '99999999999999999999'])('refuses %j with SWEEP_BAD_JOBS, exit 2', (value) => {
    expect(() => parseJobs(value)).toThrowError(expect.objectContaining({ code: 'SWEEP_BAD_JOBS', exitCode: 2, message: expect.stringContaining('--jobs') }));
  });
});

describe('grid validation (config section and --grid flags)', () => {
  it('names the JSON path of every bad axis in the config, all at once', async () => {
    const raw = {
      ...baselinesConfig,
      sweep: {
        grid: {
          'nope.epochs': [1],
          'phase-two.nope': [1],
          'phase-two.epochs': [],
          'phase-two.learningRate': [1e-4, -1, 'fast'],
          'phase-one.seed': [1, 2],
          'split.holdout': [[9], [9]],
        },
      },
    };
    const problems = await problemsOf({ raw });
    expect(problems).toEqual([
      expect.stringMatching(/^sweep\.grid\["nope\.epochs"\]: no entry named "nope"; entries: ingest, split/),
      expect.stringMatching(/^sweep\.grid\["phase-two\.nope"\]: stage phase-two has no param "nope"; its params: epochs, seed, learningRate/),
      expect.stringMatching(/^sweep\.grid\["phase-two\.epochs"\]: lists no values/),
      expect.stringMatching(/^sweep\.grid\["phase-two\.learningRate"\]\[1\]: -1 is not a valid phase-two\.learningRate: /),
      expect.stringMatching(/^sweep\.grid\["phase-two\.learningRate"\]\[2\]: "fast" is not a valid phase-two\.learningRate: /),
      expect.stringMatching(/^sweep\.grid\["phase-one\.seed"\]: seeds are an axis of their own/),
      expect.stringMatching(/^sweep\.grid\["split\.holdout"\]\[1\]: repeats \[9\] \(value 1\)/),
    ]);
  });

  it('names the --grid flag for a bad flag axis', async () => {
    const problems = await problemsOf({ grid: [parseGridFlag('phase-two.learningRat=[1e-4]'), parseGridFlag('phase-two.epochs=[2,0]'), parseGridFlag('phase-twoo.epochs=[2]')] });
    expect(problems).toEqual([
      expect.stringMatching(/^--grid phase-two\.learningRat=\[1e-4\]: stage phase-two has no param "learningRat"/),
      expect.stringMatching(/^--grid phase-two\.epochs=\[2,0\] \(value 2\): 0 is not a valid phase-two\.epochs/),
      expect.stringMatching(/^--grid phase-twoo\.epochs=\[2\]: no entry named "phase-twoo"/),
    ]);
  });

  it('refuses a sweep section of the wrong shape (unknown key, seeds not integers)', async () => {
    const problems = await problemsOf({ raw: { ...baselinesConfig, sweep: { grids: {}, seeds: [0.5] } } });
    expect(problems).toEqual([expect.stringMatching(/^sweep\.seeds\[0\]: .*expected int/), 'sweep: unknown key "grids"']);
  });
});

describe('planSweep', () => {
  it('plans a plain run (no grid, no seeds) as one run that is not a sweep', async () => {
    const plan = await planSweep(request());
    expect(plan.isSweep).toBe(false);
    expect(plan.runs).toHaveLength(1);
    expect(plan.units.map((u) => u.entry)).toEqual(['ingest', 'split', 'phase-one', 'transplant', 'phase-two', 'full-finetune', 'scratch']);
    expect(plan.runs[0]!.config.seed).toBe(0);
    // --seed N is one run with that seed, not a sweep; --seeds N (a list of one) is.
    const seeded = await planSweep(request({ seed: 7 }));
    expect([seeded.isSweep, seeded.runs.map((r) => r.config.seed)]).toEqual([false, [7]]);
    expect((await planSweep(request({ seeds: [7] }))).isSweep).toBe(true);
  });

  it('builds what runs share once: a baselines config x 2 seeds', async () => {
    const plan = await planSweep(request({ seeds: [0, 1] }));
    expect(plan.isSweep).toBe(true);
    expect(plan.runs.map((r) => r.seed)).toEqual([0, 1]);
    const count = (entry: string) => plan.units.filter((u) => u.entry === entry).length;
    // ingest and split take no seed: one unit each, used by both runs.
    expect(count('ingest')).toBe(1);
    expect(count('split')).toBe(1);
    expect(plan.units.find((u) => u.entry === 'split')!.usedBy).toEqual([
      { run: 0, entry: 'split' },
      { run: 1, entry: 'split' },
    ]);
    // Everything seeded: once per seed.
    for (const entry of ['phase-one', 'transplant', 'phase-two', 'full-finetune', 'scratch']) expect(count(entry)).toBe(2);
    expect(plan.units).toHaveLength(2 + 5 * 2);
    // Every run names a unit for every entry, and the units it needs come before it.
    const position = new Map(plan.units.map((u, i) => [u.id, i]));
    for (const unit of plan.units) for (const need of unit.needs) expect(position.get(need)!).toBeLessThan(position.get(unit.id)!);
    for (const run of plan.runs) expect(Object.keys(run.entries)).toHaveLength(7);
    expect(plan.runs[0]!.entries['split']).toBe(plan.runs[1]!.entries['split']);
    expect(plan.runs[0]!.entries['phase-one']).not.toBe(plan.runs[1]!.entries['phase-one']);
  });

  it('varies only what the grid reaches: a phase-two grid x 2 seeds shares phase one and the transplant per seed', async () => {
    const plan = await planSweep(request({ target: 'phase-two', seeds: [0, 1], grid: [parseGridFlag('phase-two.learningRate=[1e-4,3e-4]')] }));
    expect(plan.runs.map((r) => [r.params, r.seed])).toEqual([
      [{ 'phase-two.learningRate': 1e-4 }, 0],
      [{ 'phase-two.learningRate': 1e-4 }, 1],
      [{ 'phase-two.learningRate': 3e-4 }, 0],
      [{ 'phase-two.learningRate': 3e-4 }, 1],
    ]);
    expect(plan.runs[2]!.overrides).toEqual(['phase-two.learningRate=0.0003']);
    const count = (entry: string) => plan.units.filter((u) => u.entry === entry).length;
    expect([count('ingest'), count('split'), count('phase-one'), count('transplant'), count('phase-two'), count('scratch')]).toEqual([1, 1, 2, 2, 4, 0]);
    expect(plan.runs[2]!.config.entries.find((e) => e.name === 'phase-two')!.params['learningRate']).toBe(3e-4);
  });

  it('dedups entries of one run with equal keys (the same stage and params under two names)', async () => {
    const raw = { ...baselinesConfig, entries: { ...baselinesConfig.entries, 'phase-one-again': { stage: 'phase-one', inputs: { data: 'split' } } } };
    const plan = await planSweep(request({ raw }));
    const unit = plan.units.find((u) => u.entry === 'phase-one')!;
    expect(unit.usedBy).toEqual([
      { run: 0, entry: 'phase-one' },
      { run: 0, entry: 'phase-one-again' },
    ]);
    expect(plan.runs[0]!.entries['phase-one-again']).toBe(unit.id);
  });

  it('merges --grid into the config section (same key replaced) and --seeds replaces its seeds', async () => {
    const raw = { ...baselinesConfig, sweep: { grid: { 'phase-two.learningRate': [1e-4, 3e-4], 'phase-two.epochs': [1, 2] }, seeds: [0, 1, 2] } };
    const fromConfig = await planSweep(request({ raw }));
    expect(fromConfig.runs).toHaveLength(2 * 2 * 3);
    const merged = await planSweep(request({ raw, grid: [parseGridFlag('phase-two.epochs=[3]'), parseGridFlag('transplant.copyBias=[false,true]')], seeds: [5] }));
    expect(merged.grid.map((a) => [a.key, a.values])).toEqual([
      ['phase-two.learningRate', [1e-4, 3e-4]],
      ['phase-two.epochs', [3]],
      ['transplant.copyBias', [false, true]],
    ]);
    expect(merged.seeds).toEqual([5]);
    expect(merged.runs).toHaveLength(4);
    expect(merged.runs.every((r) => r.config.seed === 5 && r.config.entries.find((e) => e.name === 'phase-two')!.params['epochs'] === 3)).toBe(true);
    // Run configs carry no sweep section: each is one run's config.
    expect(merged.runs.every((r) => r.config.sweep === undefined)).toBe(true);
  });

  it('gives the same sweep the same id however it is written, and another id when anything that matters differs', async () => {
    const a = await planSweep(request({ seeds: [0, 1], grid: [parseGridFlag('phase-two.learningRate=[1e-4,3e-4]')] }));
    // The same sweep from the config section, with the entries in another order and another path.
    const reordered = { sweep: { grid: { 'phase-two.learningRate': [1e-4, 3e-4] }, seeds: [0, 1] }, entries: baselinesConfig.entries, seed: 0, name: 'baselines-test' };
    const b = await planSweep({ ...request({ raw: reordered }), configPath: 'elsewhere/copy.json' });
    expect(a.sweepId).toMatch(/^[0-9a-f]{12}$/);
    expect(b.sweepId).toBe(a.sweepId);
    const ids = await Promise.all([
      planSweep(request({ seeds: [0, 2], grid: [parseGridFlag('phase-two.learningRate=[1e-4,3e-4]')] })),
      planSweep(request({ seeds: [0, 1], grid: [parseGridFlag('phase-two.learningRate=[1e-4,2e-4]')] })),
      planSweep(request({ seeds: [0, 1], grid: [parseGridFlag('phase-two.learningRate=[1e-4,3e-4]')], target: 'phase-two' })),
      planSweep(request({ seeds: [0, 1], grid: [parseGridFlag('phase-two.learningRate=[1e-4,3e-4]')], set: ['phase-one.epochs=2'] })),
    ]);
    expect(new Set([a.sweepId, ...ids.map((p) => p.sweepId)]).size).toBe(5);
    // Pinned: the id depends only on the plan's canonical JSON, so it is the same on every machine and version that resolves the config alike.
    expect(a.sweepId).toMatchInlineSnapshot(`"6d0fdbc80f8d"`);
  });

  it('computes the keys graft run computes (the runner agrees on every entry)', async () => {
    const plan = await planSweep(request({ seeds: [3] }));
    const { runPipeline } = await import('@graft/pipeline');
    const { ArtifactStore } = await import('@graft/artifacts');
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const pino = (await import('pino')).default;
    const { silentProgress } = await import('@graft/core');
    const root = await mkdtemp(join(tmpdir(), 'graft-plan-'));
    try {
      const record = await runPipeline({
        config: plan.runs[0]!.config,
        configPath: 'baselines.json',
        registry: testRegistry,
        store: new ArtifactStore(root),
        target: 'all',
        runId: 'r1',
        logger: pino({ level: 'silent' }),
        createProgress: () => silentProgress,
      });
      expect(Object.fromEntries(Object.entries(record.stages).map(([entry, s]) => [entry, s.key]))).toEqual(plan.runs[0]!.entries);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('refuses an unknown target before planning', async () => {
    await expect(planSweep(request({ target: 'phase-three' }))).rejects.toMatchObject({ code: 'UNKNOWN_TARGET', exitCode: 2 });
  });
});
