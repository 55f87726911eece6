/**
 * Reliability of the `graft` binary, black-box: real child processes killed with
 * SIGKILL mid-training, two processes on one store, non-finite losses, bad input and
 * corrupted artifact files, all on a small slice of real MNIST (600 train / 200 test
 * images; phase one sees 4 batches of 100 per epoch).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyChainConfig, writeMnistSlice } from '@graft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesUnder, flipByte, graft, lastJson, logRecords, ls, plainLines, startGraft, waitFor, type GraftResult } from './test-support.ts';

const STAGES = ['ingest', 'split', 'phase-one', 'transplant', 'phase-two'] as const;

let work: string;

function pipelineConfig(phaseOne: Record<string, unknown>, overrides: { splitStage?: string } = {}) {
  return tinyChainConfig({
    source: join(work, 'idx'),
    name: 'reliability',
    seed: 3,
    phaseOne: { evalEvery: 2, ...phaseOne },
    ...(overrides.splitStage ? { entries: { split: { stage: overrides.splitStage, inputs: { data: 'ingest' } } } } : {}),
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'graft-reliability-'));
  await writeMnistSlice(join(work, 'idx'));
  // 4 epochs of 4 batches: an epoch takes about a second, so there is time to kill a run between checkpoints.
  await writeFile(join(work, 'resume.json'), JSON.stringify(pipelineConfig({ epochs: 4 })));
  await writeFile(join(work, 'all.json'), JSON.stringify(pipelineConfig({ epochs: 1 })));
  await writeFile(join(work, 'unknown-stage.json'), JSON.stringify(pipelineConfig({ epochs: 1 }, { splitStage: 'splitt' })));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const store = (name: string) => join(work, name);

function expectOk(result: GraftResult, what: string): void {
  expect(result.code, `${what} failed:\n${result.stderr.slice(-3000)}`).toBe(0);
}

/** Lock files (and lock guards) anywhere under <store>/.locks. */
async function lockFiles(root: string): Promise<string[]> {
  return filesUnder(join(root, '.locks'));
}

/** Key dirs under <store>/.checkpoints/<stage>/. */
async function checkpointKeys(root: string, stage: string): Promise<string[]> {
  return ls(join(root, '.checkpoints', stage));
}

/** metrics.json without the wall-clock fields, which differ between any two runs. */
function withoutTiming(metrics: Record<string, unknown>): Record<string, unknown> {
  const rest = { ...metrics };
  for (const field of ['msPerStep', 'durationMs', 'resumedAfterEpoch']) delete rest[field];
  return rest;
}

/**
 * Starts `graft run phase-one`, waits for the first complete checkpoint file, then
 * SIGKILLs the process: a crash in the middle of the second epoch.
 */
async function killAfterFirstCheckpoint(root: string): Promise<{ pid: number; checkpoint: string }> {
  const running = startGraft(['run', 'phase-one', '--config', 'resume.json', '--artifacts', root], work);
  const checkpoint = await waitFor(
    async () => {
      if (running.child.exitCode !== null) throw new Error(`graft exited (${running.child.exitCode}) before writing a checkpoint:\n${running.output().stderr.slice(-3000)}`);
      for (const key of await checkpointKeys(root, 'phase-one')) {
        // training.ckpt appears by rename, so its presence means a whole checkpoint.
        if ((await ls(join(root, '.checkpoints', 'phase-one', key))).includes('training.ckpt')) return join(root, '.checkpoints', 'phase-one', key, 'training.ckpt');
      }
      return undefined;
    },
    'the first phase-one checkpoint',
    90_000,
  );
  await running.kill9();
  const exit = await running.exited;
  expect(exit.signal, `graft finished before it could be killed:\n${running.output().stderr.slice(-2000)}`).toBe('SIGKILL');
  return { pid: running.child.pid!, checkpoint };
}

async function readArtifact(path: string): Promise<{ weights: Buffer; metrics: Record<string, any> }> {
  return {
    weights: await readFile(join(path, 'model', 'weights.bin')),
    metrics: JSON.parse(await readFile(join(path, 'metrics.json'), 'utf8')) as Record<string, any>,
  };
}

describe('kill -9 during phase-one training', () => {
  let reference: { key: string; weights: Buffer; metrics: Record<string, any>; manifestMetrics: Record<string, unknown> };
  let leftoverTmp: string[] = [];

  it('an uninterrupted run is the reference', async () => {
    const run = await graft(['run', 'phase-one', '--config', 'resume.json', '--artifacts', store('A'), '--json'], work);
    expectOk(run, 'reference run');
    const entry = lastJson(run.stdout).stages['phase-one'];
    reference = { key: entry.key, manifestMetrics: entry.metrics, ...(await readArtifact(entry.path)) };
    expect(reference.metrics.steps).toBe(16);
    expect(reference.metrics.resumedAfterEpoch).toBeNull();
    expect(await checkpointKeys(store('A'), 'phase-one')).toEqual([]);
  }, 120_000);

  it('publishes nothing when killed, then resumes from the checkpoint and ends bit-identical', async () => {
    const root = store('B');
    const { pid, checkpoint } = await killAfterFirstCheckpoint(root);
    expect(await ls(join(root, 'phase-one')), 'a killed build must not leave a visible artifact').toEqual([]);
    expect((await ls(join(root, '.tmp'))).some((name) => name.startsWith(`phase-one.`) && name.includes(`.${pid}.`))).toBe(true);
    expect(checkpoint).toContain(reference.key);

    const resumed = await graft(['run', 'phase-one', '--config', 'resume.json', '--artifacts', root, '--json'], work);
    expectOk(resumed, 'resumed run');
    const entry = lastJson(resumed.stdout).stages['phase-one'];
    expect(entry.key).toBe(reference.key);
    const resumeLog = logRecords(resumed.stderr).find((r) => r.entry === 'phase-one' && /^resuming after epoch \d+/.test(String(r.msg)));
    expect(resumeLog, 'the resumed run logs that it resumed').toBeDefined();
    expect(resumeLog!.epoch).toBeGreaterThanOrEqual(1);
    expect(resumeLog!.epoch).toBeLessThan(4);

    const after = await readArtifact(entry.path);
    expect(after.metrics.resumedAfterEpoch).toBe(resumeLog!.epoch);
    expect(after.metrics.steps).toBe(16);
    expect(after.metrics.curve).toEqual(reference.metrics.curve);
    expect(withoutTiming(after.metrics)).toEqual(withoutTiming(reference.metrics));
    expect(after.weights.equals(reference.weights), 'weights.bin is byte-identical to the uninterrupted run').toBe(true);
    expect(withoutTiming(entry.metrics)).toEqual(withoutTiming(reference.manifestMetrics));

    expect(await checkpointKeys(root, 'phase-one'), 'checkpoints are removed on publish').toEqual([]);
    expectOk(await graft(['artifacts', 'verify', '--artifacts', root], work), 'verify');
  }, 120_000);

  it('--no-resume after a kill trains from scratch and still ends bit-identical', async () => {
    const root = store('C');
    const { pid } = await killAfterFirstCheckpoint(root);
    leftoverTmp = (await ls(join(root, '.tmp'))).filter((name) => name.includes(`.${pid}.`));
    expect(leftoverTmp.length, 'the killed build leaves its temp dir (gc collects it)').toBeGreaterThan(0);

    const fresh = await graft(['run', 'phase-one', '--config', 'resume.json', '--artifacts', root, '--no-resume', '--json'], work);
    expectOk(fresh, '--no-resume run');
    expect(logRecords(fresh.stderr).filter((r) => /resum/.test(String(r.msg)))).toEqual([]);
    const entry = lastJson(fresh.stdout).stages['phase-one'];
    expect(entry.key).toBe(reference.key);
    const after = await readArtifact(entry.path);
    expect(after.metrics.resumedAfterEpoch).toBeNull();
    expect(after.metrics.curve).toEqual(reference.metrics.curve);
    expect(after.weights.equals(reference.weights)).toBe(true);
    expect(await checkpointKeys(root, 'phase-one')).toEqual([]);
  }, 120_000);

  it('leaves no stale temp dirs or locks once gc has run after the crash', async () => {
    const root = store('C');
    const gc = await graft(['artifacts', 'gc', '--artifacts', root], work);
    expectOk(gc, 'gc');
    // The run after the crash may clean up the dead build's temp dir itself; gc must at the latest.
    expect(await ls(join(root, '.tmp')), `leftovers were ${leftoverTmp.join(', ')}`).toEqual([]);
    expect(await lockFiles(root)).toEqual([]);
    // The completed run references every artifact, so gc keeps them and they still verify.
    for (const stage of ['ingest', 'split', 'phase-one']) expect(await ls(join(root, stage)), stage).toHaveLength(1);
    expectOk(await graft(['artifacts', 'verify', '--artifacts', root], work), 'verify');
  }, 60_000);
});

describe('two processes running the whole pipeline on one store', () => {
  const root = () => store('shared');
  let results: GraftResult[] = [];

  it('both succeed with the same keys, one artifact per stage, and each model trained once', async () => {
    const runs = [0, 1].map(() => startGraft(['run', 'all', '--config', 'all.json', '--artifacts', root(), '--json'], work));
    await Promise.all(runs.map((r) => r.exited));
    results = runs.map((r) => r.output());
    results.forEach((r, i) => expectOk(r, `process ${i}`));
    const [a, b] = results.map((r) => lastJson(r.stdout));
    for (const entry of STAGES) {
      expect(a.stages[entry].key, entry).toBe(b.stages[entry].key);
      expect(a.stages[entry].path, entry).toBe(b.stages[entry].path);
      expect(await ls(join(root(), entry)), entry).toEqual([a.stages[entry].key]);
    }
    // The loser waits for the winner's lock and reuses its artifact instead of training again.
    const logs = results.flatMap((r) => logRecords(r.stderr));
    const raced = results.some((r) => /is being built by/.test(r.stderr)) || logs.some((r) => /built meanwhile/.test(String(r.msg)));
    expect(raced, 'the two processes met on a lock (otherwise this test proves nothing)').toBe(true);
    for (const entry of ['phase-one', 'phase-two']) {
      expect(logs.filter((r) => r.entry === entry && /^epoch 1 batch 2:/.test(String(r.msg))), `${entry} trained once`).toHaveLength(1);
    }
    expectOk(await graft(['artifacts', 'verify', '--artifacts', root()], work), 'verify');
    expect(await ls(join(root(), '.tmp')), 'no temp dirs left').toEqual([]);
    expect(await lockFiles(root()), 'no lock files left').toEqual([]);
  }, 120_000);

  it('leaves no checkpoint dirs behind for published keys', async () => {
    for (const stage of STAGES) expect(await checkpointKeys(root(), stage), stage).toEqual([]);
  });
});

describe('a non-finite loss', () => {
  let run: GraftResult;

  it('fails the run naming the step, and publishes nothing for that entry', async () => {
    const root = store('nan');
    // Adam's first step moves every weight by ~lr: the L2 term overflows float32 at step 2.
    run = await graft(['run', 'phase-one', '--config', 'resume.json', '--artifacts', root, '--set', 'phase-one.learningRate=1e20'], work);
    expect(run.code).not.toBe(0);
    const report = plainLines(run.stderr).join('\n');
    expect(report).toMatch(/(NaN|Infinity|non-finite)/);
    expect(report).toMatch(/epoch 1, batch \d+/);
    expect(await ls(join(root, 'phase-one'))).toEqual([]);
    expect((await ls(join(root, '.tmp'))).filter((name) => name.startsWith('phase-one.'))).toEqual([]);
    expect(await lockFiles(root)).toEqual([]);
    // Upstream entries were fine and stay published.
    expect(await ls(join(root, 'split'))).toHaveLength(1);
    const [runId] = await ls(join(root, 'runs'));
    const record = JSON.parse(await readFile(join(root, 'runs', runId!, 'run.json'), 'utf8'));
    expect(record.status).toBe('failed');
    expect(record.error).toMatchObject({ code: 'NON_FINITE_LOSS', stage: 'phase-one' });
  }, 60_000);

  it('names the failing entry in the error line (in `run all` either phase could diverge)', () => {
    expect(plainLines(run.stderr).join('\n')).toMatch(/phase-one.*(NaN|Infinity|non-finite)|(NaN|Infinity|non-finite).*phase-one/);
  });
});

describe('bad input', () => {
  const cases: Array<{ name: string; args: string[]; line: RegExp; untouched: readonly string[] }> = [
    {
      name: 'negative epochs',
      args: ['run', 'phase-one', '--config', 'resume.json', '--set', 'phase-one.epochs=-1'],
      line: /--set phase-one\.epochs=-1: .*1/,
      untouched: STAGES,
    },
    {
      name: 'holding out every class',
      args: ['run', 'split', '--config', 'resume.json', '--set', 'split.holdout=[0,1,2,3,4,5,6,7,8,9]'],
      line: /split param holdout\b.*every label/,
      // The labels are only known from the data, so ingest is built (and valid) first.
      untouched: ['split', 'phase-one', 'transplant', 'phase-two'],
    },
    {
      name: 'a source that is a file',
      args: ['run', 'ingest', '--config', 'resume.json', '--set', 'ingest.source=IDXFILE'],
      line: /ingest param source\b.*IDXFILE.* is a file/,
      untouched: STAGES,
    },
    {
      name: 'an unknown target entry',
      args: ['run', 'phase-three', '--config', 'resume.json'],
      line: /"phase-three" is not an entry/,
      untouched: STAGES,
    },
    {
      name: 'an unknown stage in the config',
      args: ['run', 'all', '--config', 'unknown-stage.json'],
      line: /entries\.split\.stage\b.*unknown stage "splitt"/,
      untouched: STAGES,
    },
  ];

  it.each(cases)('$name: exit code 2, one clear line, nothing built', async ({ name, args, line, untouched }) => {
    const root = store(`bad-${name.replace(/\W+/g, '-')}`);
    const file = join(work, 'idx', 'train-images-idx3-ubyte');
    const result = await graft([...args.map((a) => a.replace('IDXFILE', file)), '--artifacts', root], work);
    expect(result.code, result.stderr).toBe(2);
    const lines = plainLines(result.stderr);
    const matching = lines.filter((l) => line.test(l.replace(file, 'IDXFILE')));
    expect(matching, `stderr:\n${lines.join('\n')}`).toHaveLength(1);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    for (const stage of untouched) expect(await filesUnder(join(root, stage)), stage).toEqual([]);
    expect(await ls(join(root, '.tmp'))).toEqual([]);
    expect(await lockFiles(root)).toEqual([]);
  }, 60_000);

  it('leaves no half-made run records that `graft runs ls` then warns about', async () => {
    const root = store('bad-target-runs');
    expect((await graft(['run', 'phase-three', '--config', 'resume.json', '--artifacts', root], work)).code).toBe(2);
    const runs = await graft(['runs', 'ls', '--artifacts', root], work);
    expectOk(runs, 'runs ls');
    expect(runs.stdout + runs.stderr).not.toMatch(/skipped|warning/i);
  }, 30_000);
});

describe('a corrupted artifact file', () => {
  const root = () => store('shared');
  let built: Record<string, { key: string; path: string }>;

  beforeAll(async () => {
    // Reuses the two-process store when that ran; builds it otherwise.
    const run = await graft(['run', 'all', '--config', 'all.json', '--artifacts', root(), '--json'], work);
    expectOk(run, 'run all');
    built = lastJson(run.stdout).stages;
  }, 120_000);

  const cases = [
    { entry: 'split', file: 'phase-one/train.arrow', offset: -100 },
    { entry: 'phase-one', file: 'model/weights.bin', offset: 5_000 },
    { entry: 'phase-one', file: 'model/model.json', offset: 40 },
    { entry: 'transplant', file: 'manifest.json', offset: 0 },
  ] as const;

  it.each(cases)('$entry $file: named and refused with --no-rebuild, rebuilt by the next run', async ({ entry, file, offset }) => {
    const { key, path } = built[entry]!;
    const label = `${entry}/${key.slice(0, 12)}`;
    const manifestBefore = JSON.parse(await readFile(join(path, 'manifest.json'), 'utf8'));
    await flipByte(join(path, ...file.split('/')), offset);

    const verify = await graft(['artifacts', 'verify', '--artifacts', root()], work);
    expect(verify.code).not.toBe(0);
    expect(verify.stdout).toContain(`CORRUPT ${label}`);
    expect(verify.stdout).toContain(file);

    const refused = await graft(['run', 'all', '--config', 'all.json', '--artifacts', root(), '--no-rebuild'], work);
    expect(refused.code).not.toBe(0);
    const report = plainLines(refused.stderr).join('\n');
    expect(report).toContain(label);
    expect(report).toContain(`${file}:`);

    const rebuilt = await graft(['run', 'all', '--config', 'all.json', '--artifacts', root(), '--json'], work);
    expectOk(rebuilt, 'rebuild');
    const warning = logRecords(rebuilt.stderr).find((r) => r.level === 40 && r.entry === entry);
    expect(warning, 'the rebuild is announced').toBeDefined();
    expect(String(warning!.msg)).toContain(label);
    expect(String(warning!.msg)).toContain(file);
    const stages = lastJson(rebuilt.stdout).stages;
    for (const other of STAGES) {
      expect(stages[other].key, other).toBe(built[other]!.key);
      // Keys name inputs, not their bytes: only the corrupt artifact is rebuilt, nothing downstream.
      expect(stages[other].cached, other).toBe(other !== entry);
    }
    // Every stage is deterministic, so the rebuilt files are the ones downstream artifacts were
    // made from (metrics.json aside: it records wall-clock timings).
    const manifestAfter = JSON.parse(await readFile(join(path, 'manifest.json'), 'utf8'));
    const contentFiles = (files: Array<{ path: string }>) => files.filter((f) => f.path !== 'metrics.json');
    expect(contentFiles(manifestAfter.files)).toEqual(contentFiles(manifestBefore.files));
    expectOk(await graft(['artifacts', 'verify', '--artifacts', root()], work), 'verify after rebuild');
    expect(await ls(join(root(), entry))).toEqual([key]);
  }, 120_000);

  it('a flipped bit inside manifest.json that keeps it valid JSON is caught too', async () => {
    const { key, path } = built['phase-two']!;
    const manifestFile = join(path, 'manifest.json');
    const text = await readFile(manifestFile, 'utf8');
    // The testAccuracy digits: a one-bit change there is still a well-formed manifest, with a wrong number.
    const at = text.indexOf('"testAccuracy": 0.') + '"testAccuracy": 0.'.length;
    expect(at).toBeGreaterThan(20);
    const bytes = Buffer.from(text, 'utf8');
    bytes[at] = bytes[at]! ^ 0x01;
    await writeFile(manifestFile, bytes);

    const verify = await graft(['artifacts', 'verify', '--artifacts', root()], work);
    expect(verify.code, verify.stdout).not.toBe(0);
    expect(verify.stdout).toContain(`CORRUPT phase-two/${key.slice(0, 12)}`);
    expect(verify.stdout).toContain('manifest.json');
  }, 60_000);
});
