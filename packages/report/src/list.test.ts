import { hostname } from 'node:os';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '@graft/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatRunList, listRuns, resolveRunRefs, type RunSummary } from './list.ts';
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

async function expectUsageError(promise: Promise<unknown>, code: string): Promise<UsageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UsageError);
  expect((error as UsageError).code).toBe(code);
  return error as UsageError;
}

describe('listRuns', () => {
  it('lists runs newest first by createdAt', async () => {
    await writeAll();
    const runs = await listRuns(store);
    expect(runs.map((r) => r.runId)).toEqual([NEW.runId, MID.runId, OLD.runId]);
    expect(runs.warnings).toEqual([]);
  });

  it('breaks createdAt ties by run id, newest id first', async () => {
    const a = fixtureRun({ runId: 'same-time-a', createdAt: '2025-03-01T10:15:00Z' });
    const b = fixtureRun({ runId: 'same-time-b', createdAt: '2025-03-01T10:15:00Z' });
    await writeRun(store, a);
    await writeRun(store, b);
    expect((await listRuns(store)).map((r) => r.runId)).toEqual(['same-time-b', 'same-time-a']);
  });

  it('returns no runs (and no warnings) when the store has no runs directory', async () => {
    const runs = await listRuns(join(store, 'nothing-here'));
    expect(runs).toEqual([]);
    expect(runs.warnings).toEqual([]);
  });

  it('skips corrupt, non-record and missing run.json files with a warning each', async () => {
    await writeAll();
    await writeRun(store, '{"runId": "trunc', 'x-truncated');
    await writeRun(store, JSON.stringify({ hello: 'world' }), 'y-not-a-record');
    await mkdir(join(store, 'runs', 'z-empty'), { recursive: true });
    const runs = await listRuns(store);
    expect(runs.map((r) => r.runId)).toEqual([NEW.runId, MID.runId, OLD.runId]);
    expect(runs.warnings.map((w) => w.runId)).toEqual(['x-truncated', 'y-not-a-record', 'z-empty']);
    expect(runs.warnings[0]!.message).toMatch(/not valid JSON/);
    expect(runs.warnings[1]!.message).toMatch(/not a run record.*runId/);
    expect(runs.warnings[2]!.message).toMatch(/does not exist/);
    expect(runs.warnings[0]!.path).toBe(join(store, 'runs', 'x-truncated', 'run.json'));
  });
});

describe('interrupted runs', () => {
  it('reports a running run whose process is gone as interrupted, and a live one as running', async () => {
    const dead = { ...fixtureRun({ runId: 'dead', createdAt: '2025-03-01T10:00:00Z' }), status: 'running' as const, pid: 2 ** 22 + 12345, hostname: hostname() };
    const live = { ...fixtureRun({ runId: 'live', createdAt: '2025-03-01T11:00:00Z' }), status: 'running' as const, pid: process.pid, hostname: hostname() };
    await writeRun(store, dead);
    await writeRun(store, live);
    const runs = await listRuns(store);
    expect(Object.fromEntries(runs.map((r) => [r.runId, r.status]))).toEqual({ dead: 'interrupted', live: 'running' });
  });
});

describe('resolveRunRefs', () => {
  it('resolves latest, latest~N, full ids and unique prefixes, in the order given', async () => {
    await writeAll();
    const runs = await resolveRunRefs(store, ['latest', 'latest~1', 'latest~2', '20250301', OLD.runId, '20250302-09']);
    expect(runs.map((r) => r.runId)).toEqual([NEW.runId, MID.runId, OLD.runId, OLD.runId, OLD.runId, MID.runId]);
    expect((await resolveRunRefs(store, ['latest~0']))[0]!.runId).toBe(NEW.runId);
  });

  it('latest~N skips runs served entirely from the cache (e.g. Nx upstream targets)', async () => {
    await writeAll();
    const allHits = fixtureRun({ runId: '20250309-000000-aaaaaa', createdAt: '2025-03-09T00:00:00Z' });
    for (const stage of Object.values(allHits.stages)) stage.cached = true;
    await writeRun(store, allHits);
    const runs = await resolveRunRefs(store, ['latest', 'latest~1', allHits.runId]);
    expect(runs.map((r) => r.runId)).toEqual([NEW.runId, MID.runId, allHits.runId]);
  });

  it('prefers an exact id over a longer id it prefixes', async () => {
    await writeRun(store, fixtureRun({ runId: 'run-1', createdAt: '2025-03-01T10:00:00Z' }));
    await writeRun(store, fixtureRun({ runId: 'run-10', createdAt: '2025-03-01T11:00:00Z' }));
    expect((await resolveRunRefs(store, ['run-1']))[0]!.runId).toBe('run-1');
  });

  it('rejects an ambiguous prefix, listing the candidates', async () => {
    await writeAll();
    const error = await expectUsageError(resolveRunRefs(store, ['20250302']), 'RUN_AMBIGUOUS');
    expect(error.message).toContain(MID.runId);
    expect(error.message).toContain(NEW.runId);
    expect(error.message).not.toContain(OLD.runId);
  });

  it('rejects an unknown ref, listing recent runs', async () => {
    await writeAll();
    const error = await expectUsageError(resolveRunRefs(store, ['latest', 'nope']), 'RUN_NOT_FOUND');
    expect(error.message).toContain('"nope"');
    for (const run of [OLD, MID, NEW]) expect(error.message).toContain(run.runId);
  });

  it('rejects latest~N beyond the oldest run', async () => {
    await writeAll();
    const error = await expectUsageError(resolveRunRefs(store, ['latest~3']), 'RUN_NOT_FOUND');
    expect(error.message).toMatch(/holds only 3.*latest~2/);
  });

  it('says there are no runs yet instead of listing nothing', async () => {
    const error = await expectUsageError(resolveRunRefs(store, ['latest']), 'RUN_NOT_FOUND');
    expect(error.message).toMatch(/No runs recorded/);
  });

  it('names the reason when the requested run exists but is unreadable', async () => {
    await writeAll();
    await writeRun(store, 'not json', 'broken-run');
    const error = await expectUsageError(resolveRunRefs(store, ['broken-run']), 'RUN_UNREADABLE');
    expect(error.message).toMatch(/not valid JSON/);
  });
});

describe('formatRunList', () => {
  it('prints one aligned row per run with the key metrics, then the warnings', async () => {
    await writeAll();
    await writeRun(store, '{', 'broken-run');
    const text = formatRunList(await listRuns(store), 'table');
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^RUN\s+DATE \(UTC\)\s+CONFIG\s+TARGET\s+SEED\s+STATUS\s+P1 TEST\s+P2 TEST\s+DURATION$/);
    expect(lines[2]).toMatch(/^20250302-120000-ccc333 {2}2025-03-02 12:00 {2}mnist-transfer {2}all +2 {2}running/);
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
