import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listRuns, runDir, writeRunRecord } from './store.ts';
import type { RunRecord } from './record.ts';
import { listSweepIds, readSweepRecord, resolveSweepRef, sweepRecordPath, writeSweepRecord, type SweepRecord } from './sweep-record.ts';

let store: string;
beforeEach(async () => {
  store = await mkdtemp(join(tmpdir(), 'graft-sweeps-'));
});
afterEach(async () => {
  await rm(store, { recursive: true, force: true });
});

const sweep = (sweepId: string): SweepRecord => ({
  sweepId,
  createdAt: '2025-03-01T10:00:00.000Z',
  configPath: 'pipelines/x.json',
  configName: 'x',
  target: 'all',
  grid: [{ key: 'phase-two.learningRate', values: [1e-4, 3e-4] }],
  seeds: [0, 1],
  runs: [{ index: 0, seed: 0, params: { 'phase-two.learningRate': 1e-4 }, keys: { ingest: 'a'.repeat(64) }, runId: 'r0' }],
});

describe('sweep records', () => {
  it('round-trips runs/sweeps/<id>.json atomically, leaving no temp file', async () => {
    await writeSweepRecord(store, sweep('0123456789ab'));
    await writeSweepRecord(store, { ...sweep('0123456789ab'), updatedAt: '2025-03-01T11:00:00.000Z' });
    expect(sweepRecordPath(store, '0123456789ab')).toBe(join(store, 'runs', 'sweeps', '0123456789ab.json'));
    expect(await readSweepRecord(store, '0123456789ab')).toEqual({ ...sweep('0123456789ab'), updatedAt: '2025-03-01T11:00:00.000Z' });
    expect(await readdir(join(store, 'runs', 'sweeps'))).toEqual(['0123456789ab.json']);
    expect(await readSweepRecord(store, 'ffffffffffff')).toBeUndefined();
  });

  it('refuses ids that are not hex (they become file names), and invalid records', async () => {
    for (const id of ['../x', 'ABC123', 'xyz', '']) expect(() => sweepRecordPath(store, id)).toThrowError(expect.objectContaining({ code: 'SWEEP_BAD_ID' }));
    await expect(writeSweepRecord(store, { ...sweep('0123456789ab'), seeds: ['x'] } as unknown as SweepRecord)).rejects.toMatchObject({ code: 'RUN_RECORD_WRITE_FAILED' });
  });

  it('reports an unusable record as RUN_UNREADABLE naming the file', async () => {
    await mkdir(join(store, 'runs', 'sweeps'), { recursive: true });
    await writeFile(join(store, 'runs', 'sweeps', 'abcdabcdabcd.json'), '{"sweepId": "abcdabcdabcd"}');
    await expect(readSweepRecord(store, 'abcdabcdabcd')).rejects.toMatchObject({ code: 'RUN_UNREADABLE', exitCode: 2, message: expect.stringContaining('abcdabcdabcd.json') });
  });

  it('resolves a full id or a unique prefix; unknown and ambiguous refs list the sweeps', async () => {
    await writeSweepRecord(store, sweep('0123456789ab'));
    await writeSweepRecord(store, sweep('0123ffffffff'));
    await writeSweepRecord(store, sweep('9999aaaabbbb'));
    expect(await listSweepIds(store)).toEqual(['0123456789ab', '0123ffffffff', '9999aaaabbbb']);
    expect((await resolveSweepRef(store, '9999')).sweepId).toBe('9999aaaabbbb');
    expect((await resolveSweepRef(store, '0123456789ab')).sweepId).toBe('0123456789ab');
    await expect(resolveSweepRef(store, '0123')).rejects.toMatchObject({ code: 'RUN_AMBIGUOUS', message: expect.stringContaining('0123456789ab, 0123ffffffff') });
    await expect(resolveSweepRef(store, 'beef')).rejects.toMatchObject({ code: 'RUN_NOT_FOUND', message: expect.stringContaining('Recorded sweeps: 0123456789ab') });
  });

  it('says how to start one when there is none', async () => {
    await expect(resolveSweepRef(store, 'beef')).rejects.toMatchObject({ code: 'RUN_NOT_FOUND', message: expect.stringContaining('--grid') });
  });

  it('lives beside the runs without being listed as one, and no run may take its name', async () => {
    await writeSweepRecord(store, sweep('0123456789ab'));
    const run = { runId: 'r1', createdAt: '2025-03-01T10:00:00Z', status: 'succeeded', target: 'all', configPath: 'x', configName: 'x', config: {}, sweep: { id: '0123456789ab', index: 0, params: {} }, backend: { requested: 'auto' }, versions: { graft: '0', node: 'v20' }, stages: {} } as RunRecord;
    await writeRunRecord(store, run);
    const runs = await listRuns(store);
    expect(runs.map((r) => [r.runId, r.sweep?.id])).toEqual([['r1', '0123456789ab']]);
    expect(runs.warnings).toEqual([]);
    expect(() => runDir(store, 'sweeps')).toThrowError(expect.objectContaining({ code: 'RUN_BAD_ID' }));
  });
});
