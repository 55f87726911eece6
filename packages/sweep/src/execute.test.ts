import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactStore } from '@graft/artifacts';
import { silentProgress, type SelectedBackend } from '@graft/core';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executeUnit, type ExecuteUnitOptions } from './execute.ts';
import { planSweep } from './plan.ts';
import { parseGridFlag } from './grid.ts';
import { baselinesConfig, builds, testRegistry } from './test-stages.ts';

let root: string;
let store: ArtifactStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'graft-unit-'));
  store = new ArtifactStore(root);
  builds.length = 0;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const options = (): ExecuteUnitOptions => ({
  registry: testRegistry,
  store,
  logger: pino({ level: 'silent' }),
  createProgress: () => silentProgress,
  selectBackend: async (): Promise<SelectedBackend> => ({ backend: 'cpu', tfjsVersion: 'none' }),
});

const plan = () => planSweep({ raw: baselinesConfig, configPath: 'b.json', registry: testRegistry, target: 'phase-two', seeds: [0, 1], grid: [parseGridFlag('phase-two.learningRate=[1e-4,3e-4]')] });

describe('executeUnit', () => {
  it('builds every unit of a plan once, in plan order, and finds each in the store afterwards', async () => {
    const { units } = await plan();
    const first = [];
    for (const unit of units) first.push(await executeUnit(unit, options()));
    expect(first.map((r) => r.outcome)).toEqual(units.map(() => 'built'));
    expect(first.map((r) => r.key)).toEqual(units.map((u) => u.key));
    expect(builds.sort()).toEqual(
      ['ingest', 'split', 'phase-one:0', 'phase-one:1', 'transplant', 'transplant', 'phase-two:0:0.0001:false', 'phase-two:1:0.0001:false', 'phase-two:0:0.0003:false', 'phase-two:1:0.0003:false'].sort(),
    );
    expect(first.at(-1)).toMatchObject({ stage: 'phase-two', entry: 'phase-two', stageVersion: '1', metrics: { testAccuracy: expect.any(Number) } });
    expect(JSON.parse(JSON.stringify(first))).toEqual(first);
    const again = await Promise.all(units.map((unit) => executeUnit(unit, options())));
    expect(again.map((r) => r.outcome)).toEqual(units.map(() => 'cached'));
    expect(builds).toHaveLength(10);
    // --force rebuilds the one unit asked for, nothing upstream.
    expect((await executeUnit(units.at(-1)!, { ...options(), force: true })).outcome).toBe('built');
    expect(builds).toHaveLength(11);
  });

  it('two concurrent executions of one unit build it once (the store lock), the other reuses it', async () => {
    const { units } = await plan();
    const [ingest] = units;
    const results = await Promise.all([executeUnit(ingest!, options()), executeUnit(ingest!, options())]);
    expect(results.map((r) => r.outcome).sort()).toEqual(['built', 'cached']);
    expect(builds).toEqual(['ingest']);
  });

  it('refuses a unit whose input is not built yet, naming the input and what to do', async () => {
    const { units } = await plan();
    const split = units.find((u) => u.entry === 'split')!;
    await expect(executeUnit(split, options())).rejects.toMatchObject({
      code: 'UNIT_INPUT_MISSING',
      message: expect.stringMatching(new RegExp(`needs its input "data" \\(ingest ${units[0]!.key.slice(0, 12)}\\), which is neither in the store .*Build the units it needs first`)),
    });
    expect(builds).toEqual([]);
  });

  it('refuses a unit whose key does not match its params and inputs here (a stale or foreign plan)', async () => {
    const { units } = await plan();
    const ingest = units[0]!;
    await expect(executeUnit({ ...ingest, params: { ...ingest.params, validationSize: 6 } }, options())).rejects.toMatchObject({ code: 'UNIT_KEY_MISMATCH', message: expect.stringContaining(ingest.key.slice(0, 12)) });
    await expect(executeUnit({ ...ingest, stage: 'phase-3' }, options())).rejects.toMatchObject({ code: 'UNIT_UNKNOWN_STAGE', message: expect.stringContaining('"phase-3"') });
    expect(builds).toEqual([]);
  });

  it('names the entry when its stage fails, and leaves nothing published', async () => {
    const failing = await planSweep({ raw: baselinesConfig, configPath: 'b.json', registry: testRegistry, target: 'phase-one', set: ['phase-one.fail=true'] });
    for (const unit of failing.units.slice(0, -1)) await executeUnit(unit, options());
    const phaseOne = failing.units.at(-1)!;
    await expect(executeUnit(phaseOne, options())).rejects.toMatchObject({ code: 'BOOM', message: expect.stringContaining('Entry "phase-one" (stage phase-one) failed') });
    expect(await store.open('phase-one', phaseOne.key)).toBeUndefined();
  });
});
