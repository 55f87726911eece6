/**
 * Black-box tests of sweeps and `--jobs`: the `graft` binary as real processes (the parent
 * and its build processes), real stages on a small slice of real MNIST, a real store.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeMnistSlice, writeTinyChain } from '@graft/testing';
import { startS3Server } from '@graft/remote/test-s3-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graft, lastJson, ls, startGraft, waitFor } from './test-support.ts';

let work: string;
const store = () => join(work, 'store');

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'graft-sweep-'));
  const source = await writeMnistSlice(join(work, 'idx'));
  await writeTinyChain(join(work, 'tiny.json'), { source, seed: 1 });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Every run.json of the store. */
async function runRecords(): Promise<any[]> {
  const dir = join(store(), 'runs');
  const names = (await readdir(dir)).filter((name) => name !== 'sweeps');
  return Promise.all(names.map(async (name) => JSON.parse(await readFile(join(dir, name, 'run.json'), 'utf8'))));
}

describe('graft run --grid --seeds --jobs 2', () => {
  let sweepId: string;

  it('runs a 2 x 2 sweep in two build processes, building every unique key exactly once across the run records', async () => {
    const result = await graft(['run', 'all', '--config', 'tiny.json', '--artifacts', store(), '--grid', 'phase-two.learningRate=[1e-4,3e-4]', '--seeds', '0,1', '--jobs', '2', '--json'], work);
    expect(result.code, result.stderr).toBe(0);
    const out = lastJson(result.stdout);
    sweepId = out.sweepId;
    expect(sweepId).toMatch(/^[0-9a-f]{12}$/);
    expect(out.runs).toHaveLength(4);
    expect(result.stderr).toContain(`sweep ${sweepId}: 4 runs, 10 unique builds, up to 2 at once`);
    const records = await runRecords();
    expect(records).toHaveLength(4);
    expect(records.every((r) => r.status === 'succeeded' && r.sweep?.id === sweepId)).toBe(true);
    const built = new Map<string, number>();
    const seen = new Set<string>();
    for (const record of records) {
      for (const stage of Object.values(record.stages) as any[]) {
        seen.add(stage.key);
        if (!stage.cached) built.set(stage.key, (built.get(stage.key) ?? 0) + 1);
      }
    }
    // 1 ingest + 1 split + 2 phase-one + 2 transplant + 4 phase-two.
    expect(seen.size).toBe(10);
    expect([...built.values()]).toEqual(Array(10).fill(1));
    expect(built.size).toBe(seen.size);
    // What is in the store is exactly what the records name.
    const stored = (await Promise.all(['ingest', 'split', 'phase-one', 'transplant', 'phase-two'].map((stage) => ls(join(store(), stage))))).flat();
    expect(new Set(stored)).toEqual(seen);
    const sweep = JSON.parse(await readFile(join(store(), 'runs', 'sweeps', `${sweepId}.json`), 'utf8'));
    expect(sweep.runs.map((r: any) => [r.params['phase-two.learningRate'], r.seed])).toEqual([
      [1e-4, 0],
      [1e-4, 1],
      [3e-4, 0],
      [3e-4, 1],
    ]);
    expect(new Set(sweep.runs.map((r: any) => r.runId))).toEqual(new Set(records.map((r) => r.runId)));
  });

  it('gives the same sweep the same id and builds nothing the second time', async () => {
    const again = await graft(['run', 'all', '--config', 'tiny.json', '--artifacts', store(), '--seeds', '0,1', '--grid', 'phase-two.learningRate=[1e-4,3e-4]', '--json'], work);
    expect(again.code, again.stderr).toBe(0);
    const out = lastJson(again.stdout);
    expect(out.sweepId).toBe(sweepId);
    expect(out.runs.every((r: any) => Object.values(r.stages).every((s: any) => s.cached))).toBe(true);
  });

  it('graft compare sweep:<id> aggregates it: one row per learning rate, mean ± std over the two seeds', async () => {
    const table = await graft(['compare', `sweep:${sweepId.slice(0, 6)}`, '--artifacts', store()], work);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain(`Sweep ${sweepId}: tiny (tiny.json), target all`);
    expect(table.stdout).toContain('4 of 4 runs done; seeds 0, 1');
    const lines = table.stdout.split('\n');
    const header = lines.find((l) => l.includes('phase-two.learningRate'))!;
    expect(header).toMatch(/phase-two\.learningRate\s+N\s+phase-one testAccuracy\s+transplant testAccuracy\s+transplant newClassTestAccuracy\s+phase-two testAccuracy/);
    expect(lines.filter((l) => /^\s+0\.000[13]\s+2\s+\d+\.\d\d% ± \d+\.\d\d pp/.test(l))).toHaveLength(2);
    const json = await graft(['compare', `sweep:${sweepId}`, '--artifacts', store(), '--json'], work);
    expect(json.code, json.stderr).toBe(0);
    const c = JSON.parse(json.stdout);
    // The aggregate is the records' own numbers: recompute one mean and std from run.json.
    // The sweep record names the latest attempt of each run (the all-cached second one).
    const named = new Set(JSON.parse(await readFile(join(store(), 'runs', 'sweeps', `${sweepId}.json`), 'utf8')).runs.map((r: any) => r.runId));
    const records = (await runRecords()).filter((r) => named.has(r.runId));
    expect(records).toHaveLength(4);
    const values = records.filter((r) => r.sweep.params['phase-two.learningRate'] === 3e-4).map((r) => r.stages['phase-two'].metrics.testAccuracy as number);
    const mean = (values[0]! + values[1]!) / 2;
    const std = Math.abs(values[0]! - values[1]!) / Math.SQRT2;
    const cell = c.variants[1].metrics.find((m: any) => m.entry === 'phase-two' && m.metric === 'testAccuracy');
    expect(c.variants[1].params['phase-two.learningRate']).toBe(3e-4);
    expect(cell.n).toBe(2);
    expect(cell.mean).toBeCloseTo(mean, 12);
    expect(cell.std).toBeCloseTo(std, 12);
    const list = await graft(['runs', 'ls', '--artifacts', store()], work);
    // Both attempts, 4 runs each, show the sweep id.
    expect(list.stdout.split('\n').filter((l) => l.includes(sweepId))).toHaveLength(8);
    const mixed = await graft(['compare', `sweep:${sweepId}`, 'latest', '--artifacts', store()], work);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/Compare either runs or sweeps/);
    const unknown = await graft(['compare', 'sweep:ffff', '--artifacts', store()], work);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(`No sweep "ffff"`);
    expect(unknown.stderr).toContain(sweepId);
  });

  it('runs a plain chain in-process as before, whatever --jobs says', async () => {
    const result = await graft(['run', 'all', '--config', 'tiny.json', '--artifacts', store(), '--seed', '0', '--jobs', '4', '--json'], work);
    expect(result.code, result.stderr).toBe(0);
    const out = lastJson(result.stdout);
    expect(out.sweepId).toBeUndefined();
    expect(out.stages['phase-two'].cached).toBe(true);
  });
});

describe('--jobs changes only the scheduling', () => {
  it('--jobs 1 and --jobs 2 build the same keys with byte-identical files (weights included)', async () => {
    const run = (jobs: string) => graft(['run', 'all', '--config', 'tiny.json', '--artifacts', join(work, `same-${jobs}`), '--seeds', '5,6', '--jobs', jobs, '--json'], work);
    const [serial, parallel] = [await run('1'), await run('2')];
    expect(serial.code, serial.stderr).toBe(0);
    expect(parallel.code, parallel.stderr).toBe(0);
    // --jobs 1 ran in the graft process, --jobs 2 in build processes.
    expect(serial.stderr).not.toContain('unique builds, up to');
    expect(parallel.stderr).toContain('2 runs, 8 unique builds, up to 2 at once');
    const keysOf = (result: typeof serial) => lastJson(result.stdout).runs.map((r: any) => Object.fromEntries(Object.entries(r.stages).map(([entry, s]: [string, any]) => [entry, s.key])));
    expect(keysOf(parallel)).toEqual(keysOf(serial));
    // Every file of every artifact, by the sha256 its manifest records.
    const files = async (jobs: string) => {
      const out: Record<string, string> = {};
      for (const stage of ['ingest', 'split', 'phase-one', 'transplant', 'phase-two']) {
        for (const key of await ls(join(work, `same-${jobs}`, stage))) {
          const manifest = JSON.parse(await readFile(join(work, `same-${jobs}`, stage, key, 'manifest.json'), 'utf8'));
          for (const file of manifest.files) if (file.path !== 'metrics.json') out[`${stage}/${key}/${file.path}`] = file.sha256;
        }
      }
      return out;
    };
    const serialFiles = await files('1');
    expect(Object.keys(serialFiles).filter((path) => path.endsWith('weights.bin'))).toHaveLength(6);
    expect(await files('2')).toEqual(serialFiles);
  });
});

describe('graft run --jobs 2 --remote', () => {
  it('build processes push what they build; a second machine pulls every key, once, and builds nothing', async () => {
    const server = await startS3Server();
    try {
      const env = { ...server.env, AWS_ENDPOINT_URL: server.endpoint };
      const args = (name: string) => ['run', 'all', '--config', 'tiny.json', '--artifacts', join(work, name), '--seeds', '3,4', '--jobs', '2', '--remote', `s3://${server.bucket}/jobs`, '--json'];
      const first = await graft(args('remote-a'), work, env);
      expect(first.code, first.stderr).toBe(0);
      const pushed = first.stderr.split('\n').filter((line) => line.includes('"msg":') && / pushed [0-9a-f]{12} to s3:/.test(line));
      expect(pushed).toHaveLength(8);
      const second = await graft(args('remote-b'), work, env);
      expect(second.code, second.stderr).toBe(0);
      const stages = lastJson(second.stdout).runs.flatMap((r: any) => Object.values(r.stages));
      expect(stages.every((s: any) => s.cached)).toBe(true);
      // Each of the 8 keys pulled once, credited to one run; the other run's record is a plain hit.
      expect(new Set(stages.filter((s: any) => s.pulled).map((s: any) => s.key)).size).toBe(8);
      expect(stages.filter((s: any) => s.pulled)).toHaveLength(8);
      const verify = await graft(['artifacts', 'verify', '--artifacts', join(work, 'remote-b')], work);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    } finally {
      await server.stop();
    }
  });
});

describe('stopping graft run --jobs 2', () => {
  it('SIGTERM stops the build processes, exits 143 and leaves a store that verifies; the same command then finishes', async () => {
    const stopStore = join(work, 'stop-store');
    const args = ['run', 'all', '--config', 'tiny.json', '--artifacts', stopStore, '--seeds', '7,8', '--jobs', '2', '--set', 'phase-one.epochs=3'];
    const running = startGraft(args, work);
    try {
      // Both phase ones are training in their own processes.
      const training = () =>
        new Set(
          running
            .output()
            .stderr.split('\n')
            .filter((line) => line.includes('"entry":"phase-one"') && line.includes('"msg":"epoch 1 batch'))
            .map((line) => JSON.parse(line).key),
        );
      await waitFor(async () => (training().size >= 2 ? true : undefined), 'two phase-one builds to train', 120_000);
      process.kill(running.child.pid!, 'SIGTERM');
      const exit = await running.exited;
      expect(exit.code, running.output().stderr).toBe(143);
      expect(running.output().stderr).toMatch(/\[INTERRUPTED\] Stopped before the end: 2 of 8 units were done/);
      // No build process outlives graft (they share its process group).
      expect(() => process.kill(-running.child.pid!, 0)).toThrow(/ESRCH/);
    } finally {
      await running.kill9();
    }
    expect(await ls(join(stopStore, 'phase-one'))).toEqual([]);
    const verify = await graft(['artifacts', 'verify', '--artifacts', stopStore], work);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const list = await graft(['runs', 'ls', '--artifacts', stopStore, '--json'], work);
    expect(JSON.parse(list.stdout).map((r: any) => r.status)).toEqual(['interrupted', 'interrupted']);
    const again = await graft([...args, '--json'], work);
    expect(again.code, again.stderr).toBe(0);
    expect(lastJson(again.stdout).runs.map((r: any) => r.stages['phase-two'].cached)).toEqual([false, false]);
  });
});

describe('bad sweep input: exit 2, one clear error, nothing created', () => {
  it.each([
    [['--jobs', '0'], /\[SWEEP_BAD_JOBS\] --jobs takes a whole number .* got "0"/],
    [['--jobs', 'many'], /\[SWEEP_BAD_JOBS\] --jobs .* got "many"/],
    [['--jobs', '1.5'], /\[SWEEP_BAD_JOBS\]/],
    [['--grid', 'phase-two.learningRate'], /\[SWEEP_BAD_GRID\] --grid phase-two\.learningRate: no "=" between/],
    [['--grid', 'phase-two.learningRate=3e-4'], /\[SWEEP_BAD_GRID\] .*one value, not a list; use \[3e-4\]/],
    [['--grid', 'phase-two.learningRat=[1e-4]'], /--grid phase-two\.learningRat=\[1e-4\]: stage phase-two has no param "learningRat"/],
    [['--grid', 'phase-three.epochs=[1]'], /--grid phase-three\.epochs=\[1\]: no entry named "phase-three"/],
    [['--grid', 'phase-two.epochs=[]'], /--grid phase-two\.epochs=\[\]: lists no values/],
    [['--grid', 'phase-two.epochs=[1,-2]'], /--grid phase-two\.epochs=\[1,-2\] \(value 2\): -2 is not a valid phase-two\.epochs/],
    [['--grid', 'phase-one.seed=[1,2]'], /seeds are an axis of their own/],
  ])('graft run all %j', async (args, message) => {
    const fresh = join(work, `bad-store-${Math.random().toString(16).slice(2)}`);
    const result = await graft(['run', 'all', '--config', 'tiny.json', '--artifacts', fresh, ...args], work);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(await ls(fresh)).toEqual([]);
  });

  it('a bad sweep section in the config names its JSON path', async () => {
    const config = JSON.parse(await readFile(join(work, 'tiny.json'), 'utf8'));
    await writeFile(join(work, 'no-seeds.json'), JSON.stringify({ ...config, sweep: { seeds: [] } }));
    const noSeeds = await graft(['run', 'all', '--config', 'no-seeds.json', '--artifacts', join(work, 'never')], work);
    expect(noSeeds.code).toBe(2);
    expect(noSeeds.stderr).toContain('sweep.seeds: Too small');
    await writeFile(join(work, 'bad-sweep.json'), JSON.stringify({ ...config, sweep: { grid: { 'phase-two.learningRate': [0.5, 'fast'] } } }));
    const result = await graft(['run', 'all', '--config', 'bad-sweep.json', '--artifacts', join(work, 'never')], work);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/sweep\.grid\["phase-two\.learningRate"\]\[1\]: "fast" is not a valid phase-two\.learningRate/);
    expect(await ls(join(work, 'never'))).toEqual([]);
  });
});
