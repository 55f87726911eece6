import { hostname } from 'node:os';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '@graft/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunRecord } from './record.ts';
import { RUNS_DIR, listRuns, newRunId, resolveRunRefs, runDir, runLogPath, runRecordPath, writeRunRecord } from './store.ts';

let store: string;
beforeEach(async () => {
  store = await mkdtemp(join(tmpdir(), 'graft-runs-'));
});
afterEach(async () => {
  await rm(store, { recursive: true, force: true });
});

/** A record as the runner writes it: two entries, both built unless `cached`. */
function record(o: { runId: string; createdAt: string; status?: RunRecord['status']; cached?: boolean; pid?: number }): RunRecord {
  const stage = (name: string, key: string) => ({
    stage: name,
    stageVersion: '1',
    key,
    path: `/store/${name}/${key}`,
    cached: o.cached ?? false,
    durationMs: 10,
    params: {},
    inputs: {},
    metrics: { testAccuracy: 0.98 },
  });
  return {
    runId: o.runId,
    createdAt: o.createdAt,
    finishedAt: o.createdAt,
    status: o.status ?? 'succeeded',
    ...(o.pid === undefined ? {} : { pid: o.pid, hostname: hostname() }),
    target: 'all',
    configPath: 'pipelines/mnist-transfer.json',
    configName: 'mnist-transfer',
    config: {},
    backend: { requested: 'auto', used: 'wasm' },
    versions: { graft: '0.1.0', node: 'v22.0.0' },
    stages: { ingest: stage('ingest', 'a'.repeat(64)), 'phase-one': stage('phase-one', `c${o.runId}`.padEnd(64, '0')) },
  };
}

/** Writes run.json by hand (bypassing writeRunRecord), so broken ones can be written too. */
async function put(run: RunRecord | string, dirName?: string): Promise<void> {
  const name = dirName ?? (typeof run === 'string' ? 'broken' : run.runId);
  await mkdir(join(store, RUNS_DIR, name), { recursive: true });
  await writeFile(join(store, RUNS_DIR, name, 'run.json'), typeof run === 'string' ? run : JSON.stringify(run));
}

const OLD = record({ runId: '20250301-101500-aaa111', createdAt: '2025-03-01T10:15:00Z' });
const MID = record({ runId: '20250302-090000-bbb222', createdAt: '2025-03-02T09:00:00Z' });
const NEW = record({ runId: '20250302-120000-ccc333', createdAt: '2025-03-02T12:00:00Z', status: 'running' });

async function writeAll(): Promise<void> {
  // Written out of order: the listing must sort, not trust readdir.
  for (const run of [MID, NEW, OLD]) await put(run);
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

describe('the runs/ layout', () => {
  it('puts each run in runs/<run-id>/ with run.json and log.ndjson', () => {
    expect(runRecordPath('/s', 'r1')).toBe(join('/s', 'runs', 'r1', 'run.json'));
    expect(runLogPath('/s', 'r1')).toBe(join('/s', 'runs', 'r1', 'log.ndjson'));
    expect(RUNS_DIR).toBe('runs');
  });

  it('makes sortable, unique ids', () => {
    const ids = Array.from({ length: 50 }, () => newRunId(new Date('2025-03-01T10:15:00Z')));
    expect(ids[0]).toMatch(/^20250301-101500-[0-9a-f]{1,6}$/);
    expect(new Set(ids).size).toBe(50);
    expect(newRunId(new Date('2025-03-02T00:00:00Z')) > ids[0]!).toBe(true);
  });

  it.each(['', '..', '.hidden', 'a/b', 'a\\b', '../escape'])('refuses the run id %j, which is not one safe path segment', (id) => {
    expect(() => runDir('/s', id)).toThrowError(expect.objectContaining({ code: 'RUN_BAD_ID' }));
  });
});

describe('writeRunRecord', () => {
  it('writes run.json that listRuns reads back, replacing the previous one and leaving no temp file', async () => {
    const run = record({ runId: newRunId(), createdAt: new Date().toISOString(), status: 'running', pid: process.pid });
    await writeRunRecord(store, run);
    await writeRunRecord(store, { ...run, status: 'succeeded' });
    expect(JSON.parse(await readFile(runRecordPath(store, run.runId), 'utf8'))).toEqual({ ...run, status: 'succeeded' });
    expect(await readdir(runDir(store, run.runId))).toEqual(['run.json']);
    expect((await listRuns(store)).map((r) => [r.runId, r.status])).toEqual([[run.runId, 'succeeded']]);
  });

  it('reports a store it cannot write to as RUN_RECORD_WRITE_FAILED, naming the path', async () => {
    const notADir = join(store, 'file');
    await writeFile(notADir, 'x');
    await expect(writeRunRecord(notADir, OLD)).rejects.toMatchObject({ code: 'RUN_RECORD_WRITE_FAILED', message: expect.stringContaining(notADir) });
  });
});

describe('listRuns', () => {
  it('lists runs newest first by createdAt', async () => {
    await writeAll();
    const runs = await listRuns(store);
    expect(runs.map((r) => r.runId)).toEqual([NEW.runId, MID.runId, OLD.runId]);
    expect(runs.warnings).toEqual([]);
  });

  it('breaks createdAt ties by run id, newest id first', async () => {
    await put(record({ runId: 'same-time-a', createdAt: '2025-03-01T10:15:00Z' }));
    await put(record({ runId: 'same-time-b', createdAt: '2025-03-01T10:15:00Z' }));
    expect((await listRuns(store)).map((r) => r.runId)).toEqual(['same-time-b', 'same-time-a']);
  });

  it('returns no runs (and no warnings) when the store has no runs directory', async () => {
    const runs = await listRuns(join(store, 'nothing-here'));
    expect(runs).toEqual([]);
    expect(runs.warnings).toEqual([]);
  });

  it('skips corrupt, non-record, empty and missing run.json files with a warning each', async () => {
    await writeAll();
    await put('{"runId": "trunc', 'w-truncated');
    await put(JSON.stringify({ hello: 'world' }), 'x-not-a-record');
    await put('', 'y-empty');
    await mkdir(join(store, 'runs', 'z-missing'), { recursive: true });
    const runs = await listRuns(store);
    expect(runs.map((r) => r.runId)).toEqual([NEW.runId, MID.runId, OLD.runId]);
    expect(runs.warnings.map((w) => w.runId)).toEqual(['w-truncated', 'x-not-a-record', 'y-empty', 'z-missing']);
    const path = (name: string) => join(store, 'runs', name, 'run.json');
    expect(runs.warnings[0]!.message.startsWith(`skipped run w-truncated: ${path('w-truncated')} is not valid JSON (`)).toBe(true);
    expect(runs.warnings[1]!.message).toMatch(/not a run record \(runId: .*\)/);
    expect(runs.warnings[2]!.message).toBe(`skipped run y-empty: ${path('y-empty')} is empty`);
    expect(runs.warnings[3]!.message).toBe(`skipped run z-missing: ${path('z-missing')} does not exist`);
    expect(runs.warnings[0]!.path).toBe(path('w-truncated'));
  });
});

describe('the run record schema', () => {
  it('keeps fields a later graft adds, and names the field a record lacks', async () => {
    await put({ ...OLD, futureField: { x: 1 } } as RunRecord);
    const { stages, ...noStages } = MID;
    const brokenStage = { ...MID, runId: 'no-cached', stages: { ingest: { ...stages.ingest!, cached: undefined } } };
    await put(noStages as unknown as RunRecord, 'no-stages');
    await put(JSON.parse(JSON.stringify(brokenStage)) as RunRecord, 'no-cached');
    const runs = await listRuns(store);
    expect(runs.map((r) => r.runId)).toEqual([OLD.runId]);
    expect((runs[0] as Record<string, unknown>)['futureField']).toEqual({ x: 1 });
    expect(runs.warnings.map((w) => [w.runId, w.message])).toEqual([
      ['no-cached', expect.stringMatching(/not a run record \(stages\.ingest\.cached: /)],
      ['no-stages', expect.stringMatching(/not a run record \(stages: /)],
    ]);
  });
});

describe('interrupted runs', () => {
  it('reports a running run whose process is gone as interrupted, and a live one as running', async () => {
    await put(record({ runId: 'dead', createdAt: '2025-03-01T10:00:00Z', status: 'running', pid: 2 ** 22 + 12345 }));
    await put(record({ runId: 'live', createdAt: '2025-03-01T11:00:00Z', status: 'running', pid: process.pid }));
    // Another host's run cannot be checked from here: it stays 'running'.
    await put({ ...record({ runId: 'elsewhere', createdAt: '2025-03-01T09:00:00Z', status: 'running', pid: 2 ** 22 + 12345 }), hostname: `not-${hostname()}` });
    const runs = await listRuns(store);
    expect(Object.fromEntries(runs.map((r) => [r.runId, r.status]))).toEqual({ dead: 'interrupted', live: 'running', elsewhere: 'running' });
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
    const allHits = record({ runId: '20250309-000000-aaaaaa', createdAt: '2025-03-09T00:00:00Z', cached: true });
    await put(allHits);
    const runs = await resolveRunRefs(store, ['latest', 'latest~1', allHits.runId]);
    expect(runs.map((r) => r.runId)).toEqual([NEW.runId, MID.runId, allHits.runId]);
  });

  it('prefers an exact id over a longer id it prefixes', async () => {
    await put(record({ runId: 'run-1', createdAt: '2025-03-01T10:00:00Z' }));
    await put(record({ runId: 'run-10', createdAt: '2025-03-01T11:00:00Z' }));
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
    await put('not json', 'broken-run');
    const error = await expectUsageError(resolveRunRefs(store, ['broken-run']), 'RUN_UNREADABLE');
    expect(error.message).toMatch(/not valid JSON/);
  });
});
