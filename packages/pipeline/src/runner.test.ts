import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactStore, computeKey } from '@graft/artifacts';
import { defineStage, GraftError, silentProgress, type StageDefinition } from '@graft/core';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import { resolveConfig, type StageRegistry } from './config.ts';
import { newRunId, runRecordPath, type RunRecord } from '@graft/runs';
import { runPipeline } from './runner.ts';

/** Real stages in miniature: each writes a file derived from its params and inputs. */
const calls: string[] = [];
const registry: StageRegistry = new Map<string, StageDefinition>(
  [
    defineStage({
      name: 'make',
      version: '1',
      description: 'writes n numbers',
      inputs: {},
      output: ['dataset'],
      params: z.strictObject({ n: z.number().int().default(3) }),
      async run(ctx) {
        calls.push('make');
        await writeFile(join(ctx.outDir, 'numbers.json'), JSON.stringify(Array.from({ length: ctx.params.n }, (_, i) => i)));
        return { metrics: { count: ctx.params.n } };
      },
    }),
    defineStage({
      name: 'scale',
      version: '1',
      description: 'multiplies its input',
      inputs: { data: 'dataset' },
      output: ['dataset'],
      params: z.strictObject({ factor: z.number().default(2), fail: z.boolean().default(false) }),
      async run(ctx) {
        calls.push('scale');
        if (ctx.params.fail) throw new GraftError('BOOM', 'scale failed on purpose');
        const numbers = JSON.parse(await readFile(join(ctx.inputs.data!.path, 'numbers.json'), 'utf8')) as number[];
        await writeFile(join(ctx.outDir, 'numbers.json'), JSON.stringify(numbers.map((x) => x * ctx.params.factor)));
        return { metrics: { sum: numbers.reduce((s, x) => s + x * ctx.params.factor, 0) } };
      },
    }),
  ].map((s) => [s.name, s as unknown as StageDefinition]),
);

const rawConfig = {
  entries: {
    make: { stage: 'make' },
    double: { stage: 'scale', inputs: { data: 'make' } },
    quadruple: { stage: 'scale', inputs: { data: 'double' } },
  },
};

let root: string;
let store: ArtifactStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'graft-runner-'));
  store = new ArtifactStore(root);
  calls.length = 0;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function run(target: string, set: string[] = [], force = false): Promise<RunRecord> {
  const config = resolveConfig(rawConfig, registry, 'test.json', { set });
  return runPipeline({
    config,
    configPath: 'test.json',
    registry,
    store,
    target,
    runId: newRunId(),
    logger: pino({ level: 'silent' }),
    createProgress: () => silentProgress,
    force,
  });
}

describe('runPipeline', () => {
  it('builds every entry once, then serves cache hits', async () => {
    const first = await run('all');
    expect(calls).toEqual(['make', 'scale', 'scale']);
    expect(Object.values(first.stages).map((s) => s.cached)).toEqual([false, false, false]);
    expect(first.stages.quadruple!.metrics).toEqual({ sum: 12 });
    calls.length = 0;
    const second = await run('all');
    expect(calls).toEqual([]);
    expect(Object.values(second.stages).map((s) => s.cached)).toEqual([true, true, true]);
    expect(Object.values(second.stages).map((s) => s.key)).toEqual(Object.values(first.stages).map((s) => s.key));
  });

  it('a changed param moves that entry\'s key and every downstream key, nothing upstream', async () => {
    const before = await run('all');
    calls.length = 0;
    const after = await run('all', ['double.factor=3']);
    expect(calls).toEqual(['scale', 'scale']);
    expect(after.stages.make!.key).toBe(before.stages.make!.key);
    expect(after.stages.double!.key).not.toBe(before.stages.double!.key);
    expect(after.stages.quadruple!.key).not.toBe(before.stages.quadruple!.key);
    expect(after.stages.quadruple!.metrics).toEqual({ sum: 18 });
  });

  it('runs only what a target needs, reusing cached upstream artifacts', async () => {
    await run('double');
    expect(calls).toEqual(['make', 'scale']);
    calls.length = 0;
    const record = await run('quadruple');
    expect(calls).toEqual(['scale']);
    expect(Object.keys(record.stages)).toEqual(['make', 'double', 'quadruple']);
  });

  it('--force rebuilds the named entry only', async () => {
    await run('all');
    calls.length = 0;
    const record = await run('double', [], true);
    expect(calls).toEqual(['scale']);
    expect(record.stages.make!.cached).toBe(true);
    expect(record.stages.double!.cached).toBe(false);
  });

  it('records a failed run and publishes nothing for the failing entry', async () => {
    await expect(run('all', ['quadruple.fail=true'])).rejects.toThrow(/on purpose/);
    const runs = (await store.list()).map((m) => m.stage);
    expect(runs.sort()).toEqual(['make', 'scale']);
    calls.length = 0;
    await run('all');
    expect(calls).toEqual(['scale']);
  });

  it('writes run.json with the resolved config, keys, hits and metrics', async () => {
    const record = await run('all');
    const onDisk = JSON.parse(await readFile(runRecordPath(root, record.runId), 'utf8')) as RunRecord;
    expect(onDisk.status).toBe('succeeded');
    expect(onDisk.stages.double).toMatchObject({ stage: 'scale', cached: false, params: { factor: 2, fail: false }, inputs: { data: 'make' } });
    expect(onDisk.stages.double!.key).toMatch(/^[0-9a-f]{64}$/);
    expect(onDisk.finishedAt).toBeDefined();
  });

  it('rebuilds a corrupt cached artifact instead of reading it', async () => {
    const first = await run('all');
    await writeFile(join(first.stages.double!.path, 'numbers.json'), '[0,0,0]');
    calls.length = 0;
    const second = await run('all');
    expect(calls).toEqual(['scale']);
    expect(second.stages.double!.cached).toBe(false);
    expect(JSON.parse(await readFile(join(second.stages.double!.path, 'numbers.json'), 'utf8'))).toEqual([0, 2, 4]);
  });

  it('gives each stage its artifact key, and records a fingerprinting stage\'s sources so verify re-derives the key', async () => {
    const seen: Record<string, string> = {};
    // Beside the store, not in it: a store holds only what graft made.
    const sourceDir = `${root}-outside`;
    await mkdir(sourceDir);
    onTestFinished(() => rm(sourceDir, { recursive: true, force: true }));
    await writeFile(join(sourceDir, 'data.txt'), 'v1');
    const withSources = new Map<string, StageDefinition>([
      [
        'read',
        defineStage({
          name: 'read',
          version: '1',
          description: 'reads a file outside the store',
          inputs: {},
          output: ['dataset'],
          params: z.strictObject({}),
          async fingerprint() {
            return { 'data.txt': await readFile(join(sourceDir, 'data.txt'), 'utf8') };
          },
          async run(ctx) {
            seen.read = ctx.key;
            await writeFile(join(ctx.outDir, 'copy.txt'), await readFile(join(sourceDir, 'data.txt')));
            return { metrics: {} };
          },
        }) as unknown as StageDefinition,
      ],
      [...registry].find(([name]) => name === 'scale')!,
    ]);
    const config = resolveConfig({ entries: { read: { stage: 'read' } } }, withSources, 'test.json');
    const record = await runPipeline({ config, configPath: 'test.json', registry: withSources, store, target: 'all', runId: newRunId(), logger: pino({ level: 'silent' }), createProgress: () => silentProgress });
    expect(seen.read).toBe(record.stages.read!.key);
    const artifact = (await store.open('read', record.stages.read!.key))!;
    expect(artifact.manifest.sources).toEqual({ 'data.txt': 'v1' });
    expect(computeKey({ ...artifact.manifest })).toBe(artifact.key);
    expect((await store.verify()).map((r) => r.ok)).toEqual([true]);
  });

  it('selects the compute backend once, before the first compute stage, and hands it to every one', async () => {
    const selected: string[] = [];
    const given: unknown[] = [];
    const compute = (name: string) =>
      defineStage({
        name,
        version: '1',
        description: 'computes',
        inputs: name === 'first' ? {} : { data: 'dataset' },
        output: ['dataset'],
        compute: true,
        params: z.strictObject({}),
        async run(ctx) {
          given.push(ctx.compute);
          await writeFile(join(ctx.outDir, 'x'), name);
          return { metrics: {} };
        },
      }) as unknown as StageDefinition;
    const computeRegistry = new Map([['first', compute('first')], ['second', compute('second')]]);
    const config = resolveConfig({ backend: 'cpu', entries: { a: { stage: 'first' }, b: { stage: 'second', inputs: { data: 'a' } } } }, computeRegistry, 'test.json');
    const options = {
      config,
      configPath: 'test.json',
      registry: computeRegistry,
      store,
      target: 'all',
      logger: pino({ level: 'silent' }),
      createProgress: () => silentProgress,
      selectBackend: async (requested: string) => {
        selected.push(requested);
        return { backend: 'cpu' as const, tfjsVersion: '4.22.0' };
      },
    };
    await runPipeline({ ...options, runId: newRunId() });
    expect(selected).toEqual(['cpu']);
    expect(given).toEqual([{ backend: 'cpu', tfjsVersion: '4.22.0' }, { backend: 'cpu', tfjsVersion: '4.22.0' }]);
    // All cached: nothing computes, so no backend is loaded at all.
    await runPipeline({ ...options, runId: newRunId() });
    expect(selected).toEqual(['cpu']);
  });
});
