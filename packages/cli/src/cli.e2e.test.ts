/**
 * Black-box tests of the `graft` binary: real processes, real stages, a real store in a
 * temp dir, on a small slice of real MNIST (600 training and 200 test images) so the
 * whole chain trains in seconds.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeMnistSlice, writeTinyChain } from '@graft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graft, lastJson } from './test-support.ts';

let work: string;
const store = () => join(work, 'store');

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'graft-cli-'));
  const source = await writeMnistSlice(join(work, 'idx'));
  await writeTinyChain(join(work, 'tiny.json'), { source, seed: 1 });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('graft CLI', () => {
  it('has --help for every command', async () => {
    for (const args of [['--help'], ['run', '--help'], ['artifacts', '--help'], ['artifacts', 'gc', '--help'], ['compare', '--help'], ['runs', 'ls', '--help']]) {
      const result = await graft(args, work);
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stdout).toContain('graft');
    }
  });

  it('runs the whole chain, then serves every entry from the cache', async () => {
    const first = await graft(['run', 'all', '--config', 'tiny.json', '--artifacts', store(), '--json'], work);
    expect(first.code, first.stderr).toBe(0);
    const result = lastJson(first.stdout);
    expect(Object.keys(result.stages)).toEqual(['ingest', 'split', 'phase-one', 'transplant', 'phase-two']);
    expect(result.stages.ingest.metrics.rows).toEqual({ train: 500, validation: 100, test: 200 });
    expect(Object.values(result.stages).every((s: any) => s.cached === false)).toBe(true);
    expect(result.stages['phase-two'].metrics.testAccuracy).toBeGreaterThan(0);
    // Logs are NDJSON on stderr when not a terminal, and in the run's log.ndjson.
    expect(first.stderr.split('\n').filter(Boolean).every((line) => line.startsWith('{'))).toBe(true);
    const log = await readFile(join(store(), 'runs', result.runId, 'log.ndjson'), 'utf8');
    expect(log).toContain('"entry":"phase-one"');

    const second = await graft(['run', 'all', '--config', 'tiny.json', '--artifacts', store(), '--json'], work);
    expect(second.code, second.stderr).toBe(0);
    const cached = lastJson(second.stdout);
    expect(Object.values(cached.stages).every((s: any) => s.cached === true)).toBe(true);
    expect(cached.stages['phase-two'].key).toBe(result.stages['phase-two'].key);
    expect(second.stderr).toContain('cache hit');
  });

  it('--set reruns only the changed entry and its downstream', async () => {
    const before = lastJson((await graft(['run', 'all', '--config', 'tiny.json', '--artifacts', store(), '--json'], work)).stdout);
    const run = await graft(['run', 'phase-two', '--config', 'tiny.json', '--artifacts', store(), '--json', '--set', 'phase-two.batchesPerEpoch=4'], work);
    expect(run.code, run.stderr).toBe(0);
    const after = lastJson(run.stdout);
    for (const entry of ['ingest', 'split', 'phase-one', 'transplant']) {
      expect(after.stages[entry].cached, entry).toBe(true);
      expect(after.stages[entry].key).toBe(before.stages[entry].key);
    }
    expect(after.stages['phase-two'].cached).toBe(false);
    expect(after.stages['phase-two'].key).not.toBe(before.stages['phase-two'].key);
  });

  it('lists and compares runs', async () => {
    const list = await graft(['runs', 'ls', '--artifacts', store(), '--json'], work);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).length).toBeGreaterThanOrEqual(2);
    const compare = await graft(['compare', 'latest', 'latest~1', '--artifacts', store(), '--format', 'markdown', '--plot', join(work, 'curves.svg')], work);
    expect(compare.code, compare.stderr).toBe(0);
    expect(compare.stdout).toContain('batchesPerEpoch');
    expect(await readFile(join(work, 'curves.svg'), 'utf8')).toContain('<svg');
  });

  it('--seeds runs one run per seed, and compare aggregates them as mean ± std', async () => {
    const result = await graft(['run', 'phase-one', '--config', 'tiny.json', '--artifacts', store(), '--seeds', '3,4', '--json'], work);
    expect(result.code, result.stderr).toBe(0);
    const { runs } = lastJson(result.stdout);
    expect(runs).toHaveLength(2);
    expect(runs[0].stages.split.key).toBe(runs[1].stages.split.key);
    expect(runs[0].stages['phase-one'].key).not.toBe(runs[1].stages['phase-one'].key);
    const compare = await graft(['compare', runs[0].runId, runs[1].runId, '--artifacts', store(), '--format', 'json'], work);
    expect(compare.code, compare.stderr).toBe(0);
    const group = JSON.parse(compare.stdout).seedGroups[0];
    expect(group.seeds).toEqual([3, 4]);
    expect(group.metrics.find((m: any) => m.entry === 'phase-one' && m.metric === 'testAccuracy').n).toBe(2);
  });

  it('verifies artifacts, names a corrupt file, and rebuilds it on the next run', async () => {
    const ok = await graft(['artifacts', 'verify', '--artifacts', store()], work);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const ls = await graft(['artifacts', 'ls', '--artifacts', store(), '--json'], work);
    const split = JSON.parse(ls.stdout).find((a: any) => a.stage === 'split');
    const file = join(store(), 'split', split.key, 'phase-one', 'train.arrow');
    const bytes = await readFile(file);
    bytes[bytes.length - 100] ^= 0xff;
    await writeFile(file, bytes);
    const bad = await graft(['artifacts', 'verify', split.key.slice(0, 10), '--artifacts', store()], work);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('phase-one/train.arrow');
    const noRebuild = await graft(['run', 'split', '--config', 'tiny.json', '--artifacts', store(), '--no-rebuild'], work);
    expect(noRebuild.code).not.toBe(0);
    expect(noRebuild.stderr).toContain('phase-one/train.arrow');
    const rebuilt = await graft(['run', 'split', '--config', 'tiny.json', '--artifacts', store(), '--json'], work);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(lastJson(rebuilt.stdout).stages.split.cached).toBe(false);
    expect((await graft(['artifacts', 'verify', '--artifacts', store()], work)).code).toBe(0);
  });

  it('shows an artifact by key prefix and garbage-collects unreferenced ones', async () => {
    const ls = JSON.parse((await graft(['artifacts', 'ls', '--artifacts', store(), '--json'], work)).stdout);
    const show = await graft(['artifacts', 'show', ls[0].key.slice(0, 8), '--artifacts', store()], work);
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout).key).toBe(ls[0].key);
    const dry = await graft(['artifacts', 'gc', '--dry-run', '--artifacts', store()], work);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/Would free/);
    expect((await readdir(join(store(), 'ingest'))).length).toBe(1);
  });

  it('rejects a bad config with every problem and exit code 2, running nothing', async () => {
    const bad = { entries: { ingest: { stage: 'ingest', params: { validationSize: -1 } }, split: { stage: 'nope', inputs: { data: 'ghost' } }, 'phase-one': { stage: 'phase-one', inputs: { data: 'split' }, params: { epochs: -3 } } } };
    await writeFile(join(work, 'bad.json'), JSON.stringify(bad));
    const result = await graft(['run', 'all', '--config', 'bad.json', '--artifacts', join(work, 'other-store')], work);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('entries.ingest.params.validationSize');
    expect(result.stderr).toContain('entries.split.stage');
    expect(result.stderr).toContain('entries.phase-one.params.epochs');
    await expect(readdir(join(work, 'other-store'))).rejects.toThrow();
  });

  it('gives exit code 2 for bad arguments and missing files', async () => {
    expect((await graft(['run', 'all', '--no-such-flag'], work)).code).toBe(2);
    expect((await graft(['run', 'all', '--config', 'missing.json'], work)).stderr).toContain('missing.json');
    expect((await graft(['run', 'all', '--config', 'missing.json'], work)).code).toBe(2);
    const notDir = await graft(['run', 'ingest', '--config', 'tiny.json', '--artifacts', store(), '--set', `ingest.source=${join(work, 'tiny.json')}`], work);
    expect(notDir.code).toBe(2);
    expect(notDir.stderr).toContain('tiny.json');
    expect((await graft(['compare', 'no-such-run', '--artifacts', store()], work)).code).toBe(2);
  });
});
