import { UsageError } from '@graft/core';
import { describe, expect, it } from 'vitest';
import { compareRuns, meanStd, type Comparison } from './compare.ts';
import { formatComparison } from './format.ts';
import { flattenMetrics } from './metrics.ts';
import { fixtureRun } from './test-fixtures.ts';

const base = fixtureRun({ runId: 'run-a', createdAt: '2025-03-01T10:00:00Z', seed: 0, p1Test: 0.98, p2Test: 0.97 });
const otherSeed = fixtureRun({ runId: 'run-b', createdAt: '2025-03-02T10:00:00Z', seed: 1, p1Test: 0.99, p2Test: 0.975 });
const thirdSeed = fixtureRun({ runId: 'run-c', createdAt: '2025-03-03T10:00:00Z', seed: 2, p1Test: 0.97, p2Test: 0.98 });
// Same seed as `base`, phase two shortened: phase one is the very same artifact.
const shortTwo = fixtureRun({ runId: 'run-d', createdAt: '2025-03-04T10:00:00Z', seed: 0, p1Test: 0.98, p2Test: 0.96, phaseTwoEpochs: 2 });

function metric(c: Comparison, entry: string, name: string) {
  const found = c.metrics.find((m) => m.entry === entry && m.metric === name);
  if (!found) throw new Error(`no metric ${entry} ${name}`);
  return found;
}

describe('flattenMetrics', () => {
  it('keeps finite numeric leaves, flattens objects with dots and skips arrays', () => {
    const flat = flattenMetrics({ rows: { train: 3, test: 1 }, testAccuracy: 0.5, curve: [{ step: 1 }], confusion: [[1, 2]], label: 'x', bad: Number.NaN });
    expect([...flat]).toEqual([
      ['rows.train', 3],
      ['rows.test', 1],
      ['testAccuracy', 0.5],
    ]);
  });
});

describe('compareRuns', () => {
  it('lists only the params that differ, with the value of every run', () => {
    const c = compareRuns([base, shortTwo]);
    expect(c.params).toEqual([{ path: 'phase-two.epochs', values: [8, 2] }]);
  });

  it('shows the run-wide seed once, not once per entry that follows it', () => {
    const c = compareRuns([base, otherSeed]);
    expect(c.params).toEqual([{ path: 'seed', values: [0, 1] }]);
  });

  it('shows an entry seed that departs from the run-wide seed, and the requested backend', () => {
    const pinned = structuredClone(otherSeed);
    pinned.stages['phase-two']!.params.seed = 7;
    pinned.backend = { requested: 'wasm', used: 'wasm' };
    const c = compareRuns([base, pinned]);
    expect(c.params).toEqual([
      { path: 'backend', values: ['auto', 'wasm'] },
      { path: 'seed', values: [0, 1] },
      { path: 'phase-two.seed', values: [0, 7] },
    ]);
  });

  it('marks entries whose artifact key is the same in every run as shared', () => {
    const c = compareRuns([base, shortTwo]);
    expect(c.entries.map((e) => [e.entry, e.artifact])).toEqual([
      ['ingest', 'shared'],
      ['split', 'shared'],
      ['phase-one', 'shared'],
      ['transplant', 'shared'],
      ['phase-two', 'differs'],
    ]);
    expect(c.entries[4]!.keys).toEqual([base.stages['phase-two']!.key, shortTwo.stages['phase-two']!.key]);
  });

  it('treats an entry missing from a run as differing, with a null key', () => {
    const withExtra = fixtureRun({ runId: 'run-e', createdAt: '2025-03-05T10:00:00Z', seed: 0, p1Test: 0.98, p2Test: 0.97, withFullFinetune: true });
    const c = compareRuns([base, withExtra]);
    const extra = c.entries.find((e) => e.entry === 'full-finetune')!;
    expect(extra).toMatchObject({ stage: 'phase-two', artifact: 'differs', keys: [null, withExtra.stages['full-finetune']!.key] });
    expect(c.params.map((p) => p.path)).toContain('full-finetune.trainBase');
    expect(metric(c, 'full-finetune', 'testAccuracy')).toMatchObject({ values: [null, 0.975], deltas: [null, null] });
  });

  it('reports every numeric metric side by side with deltas vs the first run', () => {
    const c = compareRuns([base, otherSeed, shortTwo]);
    const p2 = metric(c, 'phase-two', 'testAccuracy');
    expect(p2.values).toEqual([0.97, 0.975, 0.96]);
    expect(p2.deltas[0]).toBe(0);
    expect(p2.deltas[1]).toBeCloseTo(0.005, 12);
    expect(p2.deltas[2]).toBeCloseTo(-0.01, 12);
    expect(metric(c, 'phase-two', 'steps')).toMatchObject({ values: [4400, 4400, 1100], deltas: [0, 0, -3300] });
    expect(metric(c, 'ingest', 'rows.train').values).toEqual([55000, 55000, 55000]);
    expect(c.metrics.some((m) => m.metric.startsWith('curve'))).toBe(false);
  });

  it('summarises runs that differ only by seed as mean and sample std', () => {
    const c = compareRuns([base, otherSeed, thirdSeed]);
    expect(c.seedGroups).toHaveLength(1);
    const [group] = c.seedGroups;
    expect(group!.runIds).toEqual(['run-a', 'run-b', 'run-c']);
    expect(group!.seeds).toEqual([0, 1, 2]);
    const p1 = group!.metrics.find((m) => m.entry === 'phase-one' && m.metric === 'testAccuracy')!;
    expect(p1.n).toBe(3);
    expect(p1.mean).toBeCloseTo(0.98, 12);
    expect(p1.std).toBeCloseTo(0.01, 12);
    const p2 = group!.metrics.find((m) => m.entry === 'phase-two' && m.metric === 'testAccuracy')!;
    expect(p2.mean).toBeCloseTo(0.975, 12);
    expect(p2.std).toBeCloseTo(0.005, 12);
    // ingest and split are the same artifacts under every seed: nothing to summarise.
    expect(group!.metrics.some((m) => m.entry === 'ingest' || m.entry === 'split')).toBe(false);
  });

  it('does not group runs that differ in anything besides the seed', () => {
    expect(compareRuns([base, shortTwo]).seedGroups).toEqual([]);
    const c = compareRuns([base, otherSeed, shortTwo]);
    expect(c.seedGroups.map((g) => g.runIds)).toEqual([['run-a', 'run-b']]);
  });

  it('counts a repeated seed once (a rerun of the same artifacts would shrink the std)', () => {
    const rerun = { ...structuredClone(base), runId: 'run-a-again' };
    const c = compareRuns([base, rerun, otherSeed]);
    expect(c.seedGroups[0]!.runIds).toEqual(['run-a', 'run-b']);
    expect(compareRuns([base, rerun]).seedGroups).toEqual([]);
  });

  it('computes a sample (n - 1) standard deviation', () => {
    expect(meanStd([2, 4, 4, 4, 5, 5, 7, 9])).toEqual({ mean: 5, std: Math.sqrt(32 / 7) });
    expect(meanStd([3])).toEqual({ mean: 3, std: null });
  });

  it('rejects an empty list of runs', () => {
    expect(() => compareRuns([])).toThrow(UsageError);
  });
});

describe('formatComparison', () => {
  const c = compareRuns([base, otherSeed, shortTwo]);

  it('renders an aligned plain-text table per section', () => {
    const text = formatComparison(c, 'table');
    expect(text).not.toMatch(/\u001b\[/);
    for (const title of ['Runs', 'Params that differ', 'Artifacts', 'Metrics', 'Across seeds 0, 1 (mean ± sample std)']) {
      expect(text.split('\n')).toContain(title);
    }
    const lines = text.split('\n');
    const header = lines.find((l) => /^ {2}PARAM/.test(l))!;
    expect(header).toMatch(/PARAM\s+run-a\s+run-b\s+run-d$/);
    const epochs = lines.find((l) => l.includes('phase-two.epochs'))!;
    // Values sit under their run's column.
    expect(epochs.indexOf('2', header.indexOf('run-d'))).toBe(header.indexOf('run-d'));
    const p2 = lines.find((l) => /^ {2}phase-two\s+testAccuracy/.test(l))!;
    expect(p2).toMatch(/97\.00%\s+97\.50% \(\+0\.50 pp\)\s+96\.00% \(-1\.00 pp\)$/);
    expect(lines.find((l) => /^ {2}phase-one\s+phase-one\s/.test(l))).toMatch(/c00000000000\s+c10000000000\s+c00000000000\s+differs$/);
    expect(lines.find((l) => /^ {2}ingest\s+ingest/.test(l))).toMatch(/aaaaaaaaaaaa\s+aaaaaaaaaaaa\s+aaaaaaaaaaaa\s+shared$/);
    const spread = lines.find((l) => /^ {2}phase-one\s+testAccuracy\s+\d/.test(l) && l.includes('pp  '))!;
    expect(spread).toMatch(/98\.50%\s+0\.71 pp\s+2$/);
  });

  it('renders GitHub markdown tables', () => {
    const md = formatComparison(c, 'markdown');
    expect(md).toContain('### Params that differ');
    expect(md).toContain('| PARAM | run-a | run-b | run-d |');
    expect(md).toContain('| --- | --- | --- | --- |');
    expect(md).toContain('| phase-two.epochs | 8 | 8 | 2 |');
    expect(md).toContain('| phase-two | testAccuracy | 97.00% | 97.50% (+0.50 pp) | 96.00% (-1.00 pp) |');
    expect(md).toContain('| ENTRY | METRIC | run-a | run-b | run-d |\n| --- | --- | ---: | ---: | ---: |');
    // Every table row has as many cells as its header.
    for (const block of md.split('\n\n').filter((b) => b.startsWith('|'))) {
      const counts = block.split('\n').map((row) => row.split(' | ').length);
      expect(new Set(counts).size).toBe(1);
    }
  });

  it('renders JSON that round-trips to the comparison', () => {
    expect(JSON.parse(formatComparison(c, 'json'))).toEqual(c);
  });

  it('says when nothing differs', () => {
    const text = formatComparison(compareRuns([base, { ...base, runId: 'run-a2' }]), 'table');
    expect(text).toMatch(/Params that differ\n {2}none/);
  });
});

describe('metric formatting', () => {
  it('shows accuracies in %, times with units and counts as integers', () => {
    const c = compareRuns([base, shortTwo]);
    const lines = formatComparison(c, 'table').split('\n');
    const row = (entry: string, name: string): string => lines.find((l) => new RegExp(`^ {2}${entry}\\s+${name}\\s`).test(l))!;
    expect(row('phase-two', 'msPerStep')).toMatch(/40\.25 ms\s+40\.25 ms$/);
    expect(row('phase-two', 'durationMs')).toMatch(/2 min 56 s\s+44\.0 s \(-2 min 12 s\)$/);
    expect(row('phase-two', 'steps')).toMatch(/4400\s+1100 \(-3300\)$/);
    // Equal metrics of shared artifacts are hidden unless asked for, like dvc metrics diff --all.
    expect(row('split', 'rows.train')).toBeUndefined();
    expect(lines.join('\n')).toMatch(/unchanged metrics of shared artifacts hidden/);
    const all = formatComparison(c, 'table', { all: true }).split('\n');
    expect(all.find((l) => /^ {2}split\s+rows\.train\s/.test(l))).toMatch(/49555\s+49555$/);
  });
});
