import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactStore, MANIFEST_FILE } from '@graft/artifacts';
import { defineStage, silentProgress, type StageDefinition } from '@graft/core';
import { newRunId, type RunRecord } from '@graft/runs';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveConfig, type StageRegistry } from './config.ts';
import { runPipeline, type SharedArtifacts } from './runner.ts';

/** Two tiny real stages; `calls` shows which ones actually ran. */
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
        return { metrics: {} };
      },
    }),
    defineStage({
      name: 'scale',
      version: '1',
      description: 'doubles its input',
      inputs: { data: 'dataset' },
      output: ['dataset'],
      params: z.strictObject({}),
      async run(ctx) {
        calls.push('scale');
        const numbers = JSON.parse(await readFile(join(ctx.inputs.data!.path, 'numbers.json'), 'utf8')) as number[];
        await writeFile(join(ctx.outDir, 'numbers.json'), JSON.stringify(numbers.map((x) => x * 2)));
        return { metrics: {} };
      },
    }),
  ].map((s) => [s.name, s as unknown as StageDefinition]),
);
const config = resolveConfig({ entries: { make: { stage: 'make' }, double: { stage: 'scale', inputs: { data: 'make' } } } }, registry, 'test.json');

/**
 * The runner's remote hook backed by another store on disk: the same contract the S3
 * remote fulfils (pull verified through publishCopy, push unless present or overwrite).
 */
function sharedStore(shared: ArtifactStore, local: ArtifactStore, log: string[]): SharedArtifacts {
  const copy = async (from: ArtifactStore, to: ArtifactStore, stage: string, key: string) => {
    const pending = await to.begin(stage, key);
    const source = from.artifactDir(stage, key);
    await cp(source, pending.outDir, { recursive: true });
    await rm(join(pending.outDir, MANIFEST_FILE));
    return to.publishCopy(pending, await readFile(join(source, MANIFEST_FILE)), shared.root);
  };
  return {
    url: shared.root,
    async pull(stage, key) {
      if (!(await shared.has(stage, key))) return undefined;
      log.push(`pull ${stage}`);
      return copy(shared, local, stage, key);
    },
    async push(stage, key, options) {
      if ((await shared.has(stage, key)) && !options?.overwrite) return 'present';
      log.push(`push ${stage}${options?.overwrite ? ' (overwrite)' : ''}`);
      if (options?.overwrite) await shared.discard(stage, key);
      await copy(local, shared, stage, key);
      return 'uploaded';
    },
  };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'graft-runner-shared-'));
  calls.length = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function runWorker(name: string, shared: ArtifactStore, log: string[], force = false): Promise<RunRecord> {
  const local = new ArtifactStore(join(dir, name));
  return runPipeline({
    config,
    configPath: 'test.json',
    registry,
    store: local,
    target: 'all',
    runId: newRunId(),
    logger: pino({ level: 'silent' }),
    createProgress: () => silentProgress,
    force,
    remote: sharedStore(shared, local, log),
  });
}

describe('runPipeline with a remote', () => {
  it('builds and pushes on the first worker; the second pulls everything and builds nothing', async () => {
    const shared = new ArtifactStore(join(dir, 'shared'));
    const log: string[] = [];
    const first = await runWorker('w1', shared, log);
    expect(calls).toEqual(['make', 'scale']);
    expect(log).toEqual(['push make', 'push scale']);
    expect(Object.values(first.stages).map((s) => [s.cached, s.pulled ?? false])).toEqual([[false, false], [false, false]]);

    calls.length = 0;
    log.length = 0;
    const second = await runWorker('w2', shared, log);
    expect(calls).toEqual([]);
    expect(log).toEqual(['pull make', 'pull scale']);
    expect(Object.values(second.stages).map((s) => [s.cached, s.pulled])).toEqual([[true, true], [true, true]]);
    expect(second.stages.double!.key).toBe(first.stages.double!.key);
  });

  it('builds an entry whose remote copy is corrupt and replaces that copy', async () => {
    const shared = new ArtifactStore(join(dir, 'shared'));
    const log: string[] = [];
    const first = await runWorker('w1', shared, log);
    await writeFile(join(shared.artifactDir('scale', first.stages.double!.key), 'numbers.json'), '[0,2,5]');

    calls.length = 0;
    log.length = 0;
    const second = await runWorker('w2', shared, log);
    expect(calls).toEqual(['scale']);
    // The pull of scale was tried and refused (sha256 mismatch), then the rebuilt one replaced it.
    expect(log).toEqual(['pull make', 'pull scale', 'push scale (overwrite)']);
    expect([second.stages.make!.pulled, second.stages.double!.cached]).toEqual([true, false]);
    expect((await shared.verify()).every((report) => report.ok)).toBe(true);
  });

  it('--force neither pulls the forced entries nor trusts the remote copy', async () => {
    const shared = new ArtifactStore(join(dir, 'shared'));
    await runWorker('w1', shared, []);
    calls.length = 0;
    const log: string[] = [];
    await runWorker('w2', shared, log, true);
    expect(calls).toEqual(['make', 'scale']);
    expect(log).toEqual(['push make (overwrite)', 'push scale (overwrite)']);
  });
});
