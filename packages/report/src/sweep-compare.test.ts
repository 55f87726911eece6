import type { RunRecord, SweepRecord } from '@graft/runs';
import { describe, expect, it } from 'vitest';
import { meanStd } from './compare.ts';
import { compareSweep, formatSweepComparison } from './sweep-compare.ts';
import { fixtureRun } from './test-fixtures.ts';

const SWEEP = 'abcdef012345';
const LRS = [1e-4, 3e-4];
const SEEDS = [0, 1, 2];

/** Phase-two test accuracy of run (lr, seed): different per run, so mean and std are checkable. */
const p2 = (lr: number, seed: number) => (lr === 1e-4 ? 0.97 : 0.98) + seed * 0.002;

function planned(): { sweep: SweepRecord; runs: RunRecord[] } {
  const runs: RunRecord[] = [];
  const sweep: SweepRecord = { sweepId: SWEEP, createdAt: '2025-03-01T10:00:00.000Z', configPath: 'pipelines/x.json', configName: 'x', target: 'all', grid: [{ key: 'phase-two.learningRate', values: LRS }, { key: 'phase-two.epochs', values: [8] }], seeds: SEEDS, runs: [] };
  for (const lr of LRS) {
    for (const seed of SEEDS) {
      const index = runs.length;
      const run = fixtureRun({ runId: `run-${index}`, createdAt: `2025-03-01T10:0${index}:00Z`, seed, p2Test: p2(lr, seed), tag: `${seed}-${lr}` });
      run.sweep = { id: SWEEP, index, params: { 'phase-two.learningRate': lr, 'phase-two.epochs': 8 } };
      runs.push(run);
      sweep.runs.push({ index, seed, params: run.sweep.params, keys: Object.fromEntries(Object.entries(run.stages).map(([e, s]) => [e, s.key])), runId: run.runId });
    }
  }
  return { sweep, runs };
}

describe('meanStd', () => {
  it('gives the mean and the sample (n - 1) standard deviation; none for one value', () => {
    expect(meanStd([2, 4, 4, 4, 5, 5, 7, 9])).toEqual({ mean: 5, std: Math.sqrt(32 / 7) });
    expect(meanStd([0.97, 0.972, 0.974]).std).toBeCloseTo(0.002, 12);
    expect(meanStd([0.5])).toEqual({ mean: 0.5, std: null });
  });
});

describe('compareSweep', () => {
  it('makes one row per variant with mean ± std of every test metric over its seeds', () => {
    const { sweep, runs } = planned();
    const c = compareSweep(sweep, runs);
    expect(c).toMatchObject({ sweepId: SWEEP, varying: ['phase-two.learningRate'], fixed: { 'phase-two.epochs': 8 }, planned: 6, done: 6, missing: [] });
    expect(c.variants.map((v) => [v.params['phase-two.learningRate'], v.seeds])).toEqual([
      [1e-4, [0, 1, 2]],
      [3e-4, [0, 1, 2]],
    ]);
    const p2Test = c.variants.map((v) => v.metrics.find((m) => m.entry === 'phase-two' && m.metric === 'testAccuracy')!);
    expect(p2Test[0]!.n).toBe(3);
    expect(p2Test[0]!.mean).toBeCloseTo(0.972, 12);
    expect(p2Test[0]!.std).toBeCloseTo(0.002, 12);
    expect(p2Test[1]!.mean).toBeCloseTo(0.982, 12);
    // Only test metrics: no validation accuracy, no row counts under "test".
    expect(c.variants[0]!.metrics.map((m) => `${m.entry} ${m.metric}`)).toEqual(['phase-one testAccuracy', 'transplant testAccuracy', 'phase-two testAccuracy', 'phase-two newClassTestAccuracy']);
    const text = formatSweepComparison(c, 'table');
    expect(text).toContain(`Sweep ${SWEEP}: x (pipelines/x.json), target all`);
    expect(text).toContain('6 of 6 runs done; seeds 0, 1, 2');
    expect(text).toContain('fixed: phase-two.epochs=8');
    const rows = text.split('\n');
    expect(rows.find((l) => l.includes('0.0003') && l.includes('98.20% ± 0.20 pp'))).toBeDefined();
    expect(rows.find((l) => /^\s+0\.0001\s+3\s/.test(l))).toContain('97.20% ± 0.20 pp');
    expect(formatSweepComparison(c, 'markdown')).toMatch(/^### Sweep .*\n\n.*\n\n\| phase-two\.learningRate \| N \|/);
    expect(JSON.parse(formatSweepComparison(c, 'json'))).toEqual(JSON.parse(JSON.stringify(c)));
  });

  it('shows a partial sweep: what is done, and what is missing and why', () => {
    const { sweep, runs } = planned();
    runs[1]!.status = 'failed';
    runs[1]!.error = { code: 'STAGE_FAILED', message: 'out of memory\nmore', stage: 'phase-two' };
    runs[4]!.status = 'running';
    delete sweep.runs[5]!.runId;
    // run-3's record is gone; run 5 never started (no record names it or is tagged with it).
    const c = compareSweep(sweep, runs.filter((r) => r.runId !== 'run-3' && r.runId !== 'run-5'));
    expect(c.done).toBe(2);
    expect(c.missing.map((m) => [m.index, m.reason])).toEqual([
      [1, 'failed at phase-two: [STAGE_FAILED] out of memory'],
      [3, 'its record run-3 was not found'],
      [4, 'running'],
      [5, 'not started'],
    ]);
    expect(c.variants.map((v) => [v.runs.map((r) => r.runId), v.missing])).toEqual([
      [['run-0', 'run-2'], 1],
      [[], 3],
    ]);
    const text = formatSweepComparison(c, 'table');
    expect(text).toContain('2 of 6 runs done');
    expect(text).toContain('missing 4 of 6; run the same command again to build them:');
    expect(text).toContain('run 1 (phase-two.learningRate=0.0001, phase-two.epochs=8, seed 1): failed at phase-two: [STAGE_FAILED] out of memory');
    expect(text).toMatch(/0\.0003\s+0 of 3\s+—/);
  });

  it('counts an earlier attempt tagged with the sweep, but not a run whose keys differ from the plan', () => {
    const { sweep, runs } = planned();
    const retried = { ...runs[0]!, runId: 'run-0-retry', status: 'failed' as const };
    sweep.runs[0]!.runId = 'run-0-retry';
    const stale = structuredClone(runs[1]!);
    stale.stages['phase-two']!.key = 'f'.repeat(64);
    const c = compareSweep(sweep, [retried, ...runs.filter((r) => r.runId !== 'run-1'), stale]);
    expect(c.variants[0]!.runs.map((r) => r.runId)).toEqual(['run-0', 'run-2']);
    expect(c.missing.map((m) => m.index)).toEqual([1]);
    expect(c.missing[0]!.reason).toMatch(/used other artifacts than planned/);
  });
});
