import { rm } from 'node:fs/promises';
import { listRuns } from '@graft/runs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatRunList, type RunSummary } from './list.ts';
import { fixtureRun, tempStore, writeRun } from './test-fixtures.ts';

let store: string;
beforeEach(async () => {
  store = await tempStore();
});
afterEach(async () => {
  await rm(store, { recursive: true, force: true });
});

const OLD = fixtureRun({ runId: '20250301-101500-aaa111', createdAt: '2025-03-01T10:15:00Z', seed: 0 });
const MID = fixtureRun({ runId: '20250302-090000-bbb222', createdAt: '2025-03-02T09:00:00Z', seed: 1, p2Test: 0.9801 });
const NEW = fixtureRun({ runId: '20250302-120000-ccc333', createdAt: '2025-03-02T12:00:00Z', seed: 2, status: 'running' });

async function writeAll(): Promise<void> {
  // Written out of order: the listing must sort, not trust readdir.
  for (const run of [MID, NEW, OLD]) await writeRun(store, run);
}

describe('formatRunList', () => {
  it('prints one aligned row per run with the key metrics, then the warnings', async () => {
    await writeAll();
    await writeRun(store, '{', 'broken-run');
    const text = formatRunList(await listRuns(store), 'table');
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^RUN\s+DATE \(UTC\)\s+CONFIG\s+TARGET\s+SEED\s+SWEEP\s+STATUS\s+P1 TEST\s+P2 TEST\s+DURATION$/);
    expect(lines[2]).toMatch(/^20250302-120000-ccc333 {2}2025-03-02 12:00 {2}mnist-transfer {2}all +2 {2}— +running/);
    expect(lines[3]).toContain('98.57%');
    expect(lines[3]).toContain('98.01%');
    expect(lines[3]).toContain('15 min 0 s');
    // Every data row is as wide as the header: the columns line up.
    expect(new Set(lines.slice(0, 5).map((l) => l.length)).size).toBe(1);
    expect(lines.at(-1)).toMatch(/^warning: skipped run broken-run: .*not valid JSON/);
  });

  it('uses the first entry of a stage when no entry carries its name', () => {
    const run = fixtureRun({ runId: 'r', createdAt: '2025-03-01T10:15:00Z', p1Test: 0.9, p2Test: 0.8 });
    run.stages = { scratch: { ...run.stages['phase-one']! }, tuned: { ...run.stages['phase-two']! } };
    const [summary] = JSON.parse(formatRunList([run], 'json')) as RunSummary[];
    expect(summary!.phaseOneTestAccuracy).toBe(0.9);
    expect(summary!.phaseTwoTestAccuracy).toBe(0.8);
  });

  it('prints JSON summaries with raw numbers and null for what is missing', () => {
    const running = { ...NEW, finishedAt: undefined };
    const summaries = JSON.parse(formatRunList([running, OLD], 'json')) as RunSummary[];
    expect(summaries).toHaveLength(2);
    expect(summaries[0]).toMatchObject({ runId: NEW.runId, status: 'running', seed: 2, durationMs: null, phaseTwoTestAccuracy: 0.9788 });
    expect(summaries[1]).toMatchObject({ runId: OLD.runId, configName: 'mnist-transfer', target: 'all', durationMs: 15 * 60_000, phaseOneTestAccuracy: 0.9857 });
  });

  it('says so when there are no runs', () => {
    expect(formatRunList([], 'table')).toMatch(/No runs recorded yet/);
    expect(JSON.parse(formatRunList([], 'json'))).toEqual([]);
  });
});
