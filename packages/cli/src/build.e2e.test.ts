/**
 * The bundled CLI (packages/cli/build.mjs): what the e2e tier's global setup built is
 * current, carries the declared entry points, and keeps heavy modules off `graft --help`.
 */
import { execFile } from 'node:child_process';
import { readFile, readdir, stat, utimes } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILD_INFO, checkBuild } from '../build.mjs';
import { GRAFT_BIN } from './test-support.ts';

const REPO = join(GRAFT_BIN, '../../../..');

/** Bare specifiers a bundle file imports statically, following its relative chunk imports. */
async function staticImports(dir: string, file: string, seen = new Set<string>()): Promise<Set<string>> {
  const bare = new Set<string>();
  if (seen.has(file)) return bare;
  seen.add(file);
  const code = await readFile(join(dir, file), 'utf8');
  for (const [, spec] of code.matchAll(/^import\s*(?:[^'"]*?\s*from\s*)?["']([^"']+)["'];?$/gm)) {
    if (spec!.startsWith('./')) for (const s of await staticImports(dir, spec!.slice(2), seen)) bare.add(s);
    else bare.add(spec!);
  }
  return bare;
}

describe('the graft CLI bundle', () => {
  it('is current and was built from the sources it lists', async () => {
    const { stale, dir } = checkBuild();
    expect(stale).toBeNull();
    const info = JSON.parse(await readFile(BUILD_INFO, 'utf8'));
    expect(join(dir!, '..', info.dir)).toBe(dir);
    for (const input of ['packages/cli/src/main.ts', 'packages/pipeline/src/runner.ts', 'packages/bench/package.json', 'packages/cli/build.mjs']) {
      expect(Object.keys(info.inputs)).toContain(input);
    }
  });

  it("emits every package's declared entry points and assets beside the chunks", async () => {
    const { dir } = checkBuild();
    const declared: string[] = [];
    const assets: string[] = [];
    for (const name of await readdir(join(REPO, 'packages'))) {
      const manifest = JSON.parse(await readFile(join(REPO, 'packages', name, 'package.json'), 'utf8').catch(() => '{}'));
      for (const entry of manifest.graft?.entryPoints ?? []) declared.push(basename(entry, extname(entry)));
      for (const asset of manifest.graft?.assets ?? []) assets.push(basename(asset));
    }
    // bench's child process and train's evaluation worker at least.
    expect(declared).toEqual(expect.arrayContaining(['child', 'curve-evaluation.worker']));
    for (const name of declared) await expect(stat(join(dir!, `${name}.js`))).resolves.toBeTruthy();
    // Files code reads beside itself (bench's PyTorch driver) are copied beside the chunks.
    expect(assets).toContain('paired-torch.py');
    for (const name of assets) await expect(stat(join(dir!, name))).resolves.toBeTruthy();
  });

  it('loads only yargs and Node built-ins before a command runs (tfjs, arrow, zod, pino, vega load on demand)', async () => {
    const { dir } = checkBuild();
    const external = [...(await staticImports(dir!, 'main.js'))].filter((spec) => !spec.startsWith('node:'));
    expect(external).toEqual(['yargs']);
  });

  it('stays current when only an mtime changes (a checkout, an Nx cache restore)', async () => {
    const file = join(REPO, 'packages/core/src/errors.ts');
    const before = await stat(file);
    try {
      await utimes(file, before.atime, new Date(before.mtimeMs + 60_000));
      expect(checkBuild().stale).toBeNull();
    } finally {
      await utimes(file, before.atime, before.mtime);
    }
  });

  it('runs `graft --help` from the bundle without rebuilding', async () => {
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile(process.execPath, [GRAFT_BIN, '--help'], (error, out, err) => (error ? reject(error) : resolve({ stdout: out, stderr: err }))),
    );
    expect(stdout).toContain('graft <command>');
    expect(stderr).toBe('');
  });
});
