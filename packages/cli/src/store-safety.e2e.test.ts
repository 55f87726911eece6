/**
 * The store never touches what is not its own (issue #9, store side), black-box: the
 * `graft` binary on temp trees holding a "victim" tree outside the store (home-like
 * folders, lock files of other tools, copies of artifacts) that must come out of every
 * command byte-identical. Data: a small slice of real MNIST (600 train / 200 test).
 */
import { createHash } from 'node:crypto';
import { cp, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyChainConfig, writeMnistSlice } from '@graft/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graft, lastJson, ls, startGraft, waitFor, type GraftResult } from './test-support.ts';

let work: string;
/** A store holding ingest + split (and the run that made them), copied for each test. */
let base: string;
let keys: { ingest: string; split: string };

function pipelineConfig() {
  return tinyChainConfig({
    source: join(work, 'idx'),
    name: 'store-safety',
    seed: 5,
    upTo: 'phase-one',
    // 4 epochs of 4 batches: long enough to kill a forced rebuild mid-training.
    phaseOne: { epochs: 4, evalEvery: 2 },
  });
}

function expectOk(result: GraftResult, what: string): void {
  expect(result.code, `${what} failed:\n${result.stdout.slice(-2000)}\n${result.stderr.slice(-3000)}`).toBe(0);
}

function expectUsageError(result: GraftResult, pattern: RegExp, what: string): void {
  expect(result.code, `${what}: expected exit 2:\n${result.stdout.slice(-2000)}\n${result.stderr.slice(-3000)}`).toBe(2);
  expect(result.stderr).toMatch(pattern);
}

const run = (args: string[], env?: Record<string, string>) => graft([...args, '--config', 'cfg.json'], work, env);

/**
 * A digest of everything under `dir` as lstat sees it: paths, kinds, file bytes, link
 * targets and mtimes of files. Links are recorded, never followed.
 */
async function treeDigest(dir: string): Promise<string> {
  const lines: string[] = [];
  const visit = async (path: string, rel: string): Promise<void> => {
    const info = await lstat(path);
    if (info.isSymbolicLink()) lines.push(`L ${rel} -> ${await readlink(path)}`);
    else if (info.isFile()) lines.push(`F ${rel} ${createHash('sha256').update(await readFile(path)).digest('hex')} ${info.mtimeMs}`);
    else if (info.isDirectory()) {
      lines.push(`D ${rel}`);
      for (const name of (await readdir(path)).sort()) await visit(join(path, name), `${rel}/${name}`);
    } else lines.push(`? ${rel}`);
  };
  await visit(dir, '.');
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

let counter = 0;
/** A fresh copy of the base store (graft's marker included). */
async function freshStore(): Promise<string> {
  const root = join(work, `store-${++counter}`);
  await cp(base, root, { recursive: true, verbatimSymlinks: true });
  return root;
}

/** A folder outside any store, with things other tools own. */
async function victim(): Promise<string> {
  const dir = join(work, `victim-${++counter}`);
  await mkdir(join(dir, 'Documents', 'taxes'), { recursive: true });
  await writeFile(join(dir, 'Documents', 'taxes', '2023.pdf'), 'tax return');
  await mkdir(join(dir, 'ingest'), { recursive: true });
  await writeFile(join(dir, 'ingest', 'Cargo.lock'), '# cargo lock, not JSON');
  await writeFile(join(dir, 'ingest', 'yarn.lock'), '# yarn lock');
  const old = new Date(Date.now() - 3600_000);
  for (const f of ['Cargo.lock', 'yarn.lock']) await utimes(join(dir, 'ingest', f), old, old);
  // Looks like a graft temp dir of a dead process: still not graft's, it is outside the store.
  await mkdir(join(dir, `ingest.${'a'.repeat(64)}.999999.abcdef123456`), { recursive: true });
  await writeFile(join(dir, `ingest.${'a'.repeat(64)}.999999.abcdef123456`, 'keep.txt'), 'mine');
  await mkdir(join(dir, 'phase-one', 'b'.repeat(64)), { recursive: true });
  await writeFile(join(dir, 'phase-one', 'b'.repeat(64), 'old.ckpt'), 'ckpt');
  const twoDays = new Date(Date.now() - 2 * 24 * 3600_000);
  await utimes(join(dir, 'phase-one', 'b'.repeat(64), 'old.ckpt'), twoDays, twoDays);
  await utimes(join(dir, 'phase-one', 'b'.repeat(64)), twoDays, twoDays);
  return dir;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'graft-store-safety-'));
  await writeMnistSlice(join(work, 'idx'));
  await writeFile(join(work, 'cfg.json'), JSON.stringify(pipelineConfig()));
  base = join(work, 'base');
  const built = await run(['run', 'split', '--artifacts', base, '--json']);
  expectOk(built, 'building the base store');
  const stages = lastJson(built.stdout).stages;
  keys = { ingest: stages.ingest.key, split: stages.split.key };
}, 120_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('1. a directory that is not a graft store is never written or cleaned', () => {
  async function homeLike(): Promise<string> {
    const home = join(work, `home-${++counter}`);
    for (const [dir, file] of [
      ['Documents/taxes', '2023.pdf'],
      ['projects/myapp', 'index.js'],
      ['photos/2019', 'beach.jpg'],
    ] as const) {
      await mkdir(join(home, dir), { recursive: true });
      await writeFile(join(home, dir, file), `${dir}/${file}`);
    }
    await writeFile(join(home, '.bashrc'), 'export PS1=$');
    return home;
  }

  it('gc --artifacts, GRAFT_ARTIFACTS and a default ./artifacts of another tool: exit 2, nothing deleted', async () => {
    const home = await homeLike();
    const before = await treeDigest(home);
    for (const dryRun of [[], ['--dry-run']]) {
      expectUsageError(await graft(['artifacts', 'gc', '--artifacts', home, ...dryRun], work), /is not a graft artifact store.*graft artifacts init/s, 'gc --artifacts');
      expectUsageError(await graft(['artifacts', 'gc', ...dryRun], work, { GRAFT_ARTIFACTS: home }), /is not a graft artifact store/, 'gc via GRAFT_ARTIFACTS');
    }
    expect(await treeDigest(home)).toBe(before);

    // A project whose ./artifacts belongs to some other build tool.
    const project = join(work, `project-${++counter}`);
    await mkdir(join(project, 'artifacts', 'release', 'v1'), { recursive: true });
    await writeFile(join(project, 'artifacts', 'release', 'v1', 'app.zip'), 'zip');
    await mkdir(join(project, 'artifacts', 'build', 'output'), { recursive: true });
    const projectBefore = await treeDigest(project);
    expectUsageError(await graft(['artifacts', 'gc'], project), /artifacts is not a graft artifact store/, 'gc on the default store');
    expect(await treeDigest(project)).toBe(projectBefore);
  });

  it('run, verify and ls refuse the directory too (nothing created in it)', async () => {
    const home = await homeLike();
    const before = await treeDigest(home);
    expectUsageError(await run(['run', 'ingest', '--artifacts', home]), /is not a graft artifact store/, 'run');
    expectUsageError(await graft(['artifacts', 'verify', '--artifacts', home], work), /is not a graft artifact store/, 'verify');
    expectUsageError(await graft(['artifacts', 'ls', '--artifacts', home], work), /is not a graft artifact store/, 'ls');
    expect(await treeDigest(home)).toBe(before);
  });

  it('in a graft store, gc deletes only unreferenced artifacts with a valid manifest and reports the rest', async () => {
    const root = await freshStore();
    await rm(join(root, 'runs'), { recursive: true });
    // Foreign things inside the store: a folder in a stage dir, a key-named dir without a manifest, a file at the root.
    await mkdir(join(root, 'ingest', 'notes'), { recursive: true });
    await writeFile(join(root, 'ingest', 'notes', 'todo.txt'), 'todo');
    await mkdir(join(root, 'split', 'c'.repeat(64)), { recursive: true });
    await writeFile(join(root, 'split', 'c'.repeat(64), 'data.csv'), '1,2,3');
    await writeFile(join(root, 'README.txt'), 'my notes');
    const gc = await graft(['artifacts', 'gc', '--artifacts', root], work);
    expectOk(gc, 'gc');
    expect(gc.stdout).toContain(`removed ${join(root, 'ingest', keys.ingest)}`);
    expect(gc.stdout).toContain(`removed ${join(root, 'split', keys.split)}`);
    expect(gc.stdout).toMatch(new RegExp(`kept ${join(root, 'split', 'c'.repeat(64))}: no valid manifest.json`));
    expect(gc.stdout).toContain(`kept ${join(root, 'ingest', 'notes')}`);
    expect(gc.stdout).toContain(`kept ${join(root, 'README.txt')}`);
    expect(await readFile(join(root, 'ingest', 'notes', 'todo.txt'), 'utf8')).toBe('todo');
    expect(await readFile(join(root, 'split', 'c'.repeat(64), 'data.csv'), 'utf8')).toBe('1,2,3');
    expect(await readFile(join(root, 'README.txt'), 'utf8')).toBe('my notes');
  });

  it('verify lists a foreign file in a store without failing (graft leaves it alone)', async () => {
    const root = await freshStore();
    await writeFile(join(root, 'README.md'), 'what this store is for');
    const verify = await graft(['artifacts', 'verify', '--artifacts', root], work);
    expectOk(verify, 'verify');
    expect(verify.stdout).toContain(`FOREIGN ${join(root, 'README.md')}: not made by graft`);
  });

  it('a store made by an older graft (no marker) is adopted; one with foreign entries needs `graft artifacts init`', async () => {
    const legacy = await freshStore();
    await rm(join(legacy, '.graft-store.json'));
    const adopted = await graft(['artifacts', 'gc', '--artifacts', legacy], work);
    expectOk(adopted, 'gc on a legacy store');
    expect(adopted.stderr).toContain('marked');
    expect(JSON.parse(await readFile(join(legacy, '.graft-store.json'), 'utf8'))).toMatchObject({ format: 'graft-artifact-store', version: 1 });
    expect(await ls(join(legacy, 'ingest'))).toEqual([keys.ingest]);

    const mixed = await freshStore();
    await rm(join(mixed, '.graft-store.json'));
    await mkdir(join(mixed, 'photos', '2019'), { recursive: true });
    await writeFile(join(mixed, 'photos', '2019', 'a.jpg'), 'jpg');
    expectUsageError(await graft(['artifacts', 'gc', '--artifacts', mixed], work), /photos\/.*graft artifacts init/s, 'gc on a mixed store');
    expectOk(await graft(['artifacts', 'init', '--artifacts', mixed], work), 'init');
    const gc = await graft(['artifacts', 'gc', '--artifacts', mixed], work);
    expectOk(gc, 'gc after init');
    expect(gc.stdout).toContain(`kept ${join(mixed, 'photos')}`);
    expect(await readFile(join(mixed, 'photos', '2019', 'a.jpg'), 'utf8')).toBe('jpg');
  });

  it('a store written by a newer graft is refused', async () => {
    const root = await freshStore();
    await writeFile(join(root, '.graft-store.json'), JSON.stringify({ format: 'graft-artifact-store', version: 99 }));
    expectUsageError(await graft(['artifacts', 'gc', '--artifacts', root], work), /format 99, written by a newer graft/, 'gc');
  });
});

describe('2. gc never follows a linked .tmp, .locks or .checkpoints', () => {
  it('reports the links (also with --dry-run) and leaves their targets alone', async () => {
    const root = await freshStore();
    const outside = await victim();
    const before = await treeDigest(outside);
    for (const name of ['.tmp', '.locks', '.checkpoints']) {
      await rm(join(root, name), { recursive: true, force: true });
      await symlink(outside, join(root, name));
    }
    const dry = await graft(['artifacts', 'gc', '--dry-run', '--artifacts', root], work);
    expectOk(dry, 'gc --dry-run');
    for (const name of ['.tmp', '.locks', '.checkpoints']) expect(dry.stdout).toContain(`kept ${join(root, name)}: a symbolic link`);
    expect(dry.stdout).not.toContain('would remove');
    expectUsageError(await graft(['artifacts', 'gc', '--artifacts', root], work), /\.tmp in the artifact store .* is a symbolic link.*Remove the link/s, 'gc');
    expectUsageError(await run(['run', 'split', '--force', '--artifacts', root]), /is a symbolic link/, 'run');
    expect(await treeDigest(outside)).toBe(before);
  });

  it('keeps files in a real .locks/.tmp that graft did not write', async () => {
    const root = await freshStore();
    await mkdir(join(root, '.locks', 'ingest'), { recursive: true });
    await writeFile(join(root, '.locks', 'ingest', 'Cargo.lock'), '# not graft');
    const old = new Date(Date.now() - 3600_000);
    await utimes(join(root, '.locks', 'ingest', 'Cargo.lock'), old, old);
    await mkdir(join(root, '.tmp'), { recursive: true });
    await writeFile(join(root, '.tmp', 'notes.txt'), 'mine');
    const gc = await graft(['artifacts', 'gc', '--artifacts', root], work);
    expectOk(gc, 'gc');
    expect(await readFile(join(root, '.locks', 'ingest', 'Cargo.lock'), 'utf8')).toBe('# not graft');
    expect(await readFile(join(root, '.tmp', 'notes.txt'), 'utf8')).toBe('mine');
    expect(gc.stdout).toContain(`kept ${join(root, '.locks', 'ingest', 'Cargo.lock')}`);
  });
});

describe('3. links at or inside artifacts are never followed', () => {
  it('a directory inside an artifact replaced by a link: corrupt, not a cache hit; the target is untouched', async () => {
    const root = await freshStore();
    const outside = await victim();
    const artifact = join(root, 'split', keys.split);
    await rename(join(artifact, 'phase-one'), join(outside, 'phase-one-copy'));
    await symlink(join(outside, 'phase-one-copy'), join(artifact, 'phase-one'));
    const before = await treeDigest(outside);

    const verify = await graft(['artifacts', 'verify', '--artifacts', root], work);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/CORRUPT split\/[0-9a-f]{12}\n.*phase-one: is a symbolic link/);
    const rerun = await run(['run', 'split', '--artifacts', root, '--json']);
    expectOk(rerun, 'run split');
    expect(lastJson(rerun.stdout).stages.split.cached).toBe(false);
    expect((await lstat(join(artifact, 'phase-one'))).isDirectory()).toBe(true);
    expectOk(await graft(['artifacts', 'verify', '--artifacts', root], work), 'verify after the rebuild');
    expect(await treeDigest(outside)).toBe(before);
  });

  it('a linked manifest.json is not read: its bytes appear in no output or log', async () => {
    const root = await freshStore();
    const outside = await victim();
    await writeFile(join(outside, 'secret.txt'), 'SECRET-PAYLOAD not json');
    const manifest = join(root, 'ingest', keys.ingest, 'manifest.json');
    await rm(manifest);
    await symlink(join(outside, 'secret.txt'), manifest);
    const before = await treeDigest(outside);

    const verify = await graft(['artifacts', 'verify', '--artifacts', root], work);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain('manifest.json: is a symbolic link');
    const rerun = await run(['run', 'ingest', '--artifacts', root, '--json']);
    expectOk(rerun, 'run ingest');
    expect(lastJson(rerun.stdout).stages.ingest.cached).toBe(false);
    const logs = await Promise.all((await ls(join(root, 'runs'))).map((id) => readFile(join(root, 'runs', id, 'log.ndjson'), 'utf8').catch(() => '')));
    for (const text of [verify.stdout, verify.stderr, rerun.stdout, rerun.stderr, ...logs]) expect(text).not.toContain('SECRET');
    expect(await treeDigest(outside)).toBe(before);
  });

  it('a linked artifact directory is reported by verify, ls and gc and rebuilt by run; its target is untouched', async () => {
    const root = await freshStore();
    const outside = await victim();
    const artifact = join(root, 'ingest', keys.ingest);
    await rename(artifact, join(outside, 'ingest-copy'));
    await symlink(join(outside, 'ingest-copy'), artifact);
    const before = await treeDigest(outside);

    const verify = await graft(['artifacts', 'verify', '--artifacts', root], work);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/CORRUPT ingest\/[0-9a-f]{12}\n.*is a symbolic link/);
    const list = await graft(['artifacts', 'ls', '--artifacts', root], work);
    expectOk(list, 'ls');
    expect(list.stderr).toContain(`${artifact}: a symbolic link`);
    await rm(join(root, 'runs'), { recursive: true });
    const gc = await graft(['artifacts', 'gc', '--artifacts', root], work);
    expectOk(gc, 'gc');
    expect(gc.stdout).toContain(`kept ${artifact}: a symbolic link`);
    const rerun = await run(['run', 'ingest', '--artifacts', root, '--json']);
    expectOk(rerun, 'run ingest');
    expect(lastJson(rerun.stdout).stages.ingest.cached).toBe(false);
    expect((await lstat(artifact)).isDirectory()).toBe(true);
    expect(await treeDigest(outside)).toBe(before);
  });

  it('a linked stage directory stops run (exit 2) and is reported by verify and gc; its target is untouched', async () => {
    const root = await freshStore();
    const outside = await victim();
    await rename(join(root, 'split'), join(outside, 'split-copy'));
    await symlink(join(outside, 'split-copy'), join(root, 'split'));
    const before = await treeDigest(outside);

    expectUsageError(await run(['run', 'split', '--artifacts', root]), /split in the artifact store .* is a symbolic link/, 'run split');
    expectUsageError(await run(['run', 'split', '--force', '--artifacts', root]), /is a symbolic link/, 'run split --force');
    const verify = await graft(['artifacts', 'verify', '--artifacts', root], work);
    expect(verify.code).not.toBe(0);
    expect(verify.stdout).toContain(`LINK    ${join(root, 'split')}: a symbolic link`);
    const gc = await graft(['artifacts', 'gc', '--artifacts', root], work);
    expectOk(gc, 'gc');
    expect(gc.stdout).toContain(`kept ${join(root, 'split')}: a symbolic link`);
    expect(await treeDigest(outside)).toBe(before);
  });
});

describe('10. --force keeps the old artifact until the new one is published', () => {
  it('a forced rebuild killed mid-training leaves the published artifact in place', async () => {
    const root = await freshStore();
    const built = await run(['run', 'phase-one', '--artifacts', root, '--json']);
    expectOk(built, 'phase-one');
    const key = lastJson(built.stdout).stages['phase-one'].key as string;
    const artifact = join(root, 'phase-one', key);
    const before = await treeDigest(artifact);

    const forced = startGraft(['run', 'phase-one', '--force', '--config', 'cfg.json', '--artifacts', root], work);
    await waitFor(
      async () => {
        if (forced.child.exitCode !== null) throw new Error(`the forced run ended before its first checkpoint:\n${forced.output().stderr.slice(-2000)}`);
        return (await ls(join(root, '.checkpoints', 'phase-one', key))).includes('training.ckpt') ? true : undefined;
      },
      'the forced rebuild to write its first checkpoint',
      90_000,
    );
    await forced.kill9();
    expect((await forced.exited).signal).toBe('SIGKILL');
    expect(await treeDigest(artifact)).toBe(before);
    const again = await run(['run', 'phase-one', '--artifacts', root, '--json']);
    expectOk(again, 'run after the killed rebuild');
    expect(lastJson(again.stdout).stages['phase-one'].cached).toBe(true);
  }, 180_000);
});

describe('11. an unreadable run record stops gc', () => {
  it('exits 2 naming the run and deletes nothing', async () => {
    const root = await freshStore();
    const [runId] = await ls(join(root, 'runs'));
    await writeFile(join(root, 'runs', runId!, 'run.json'), '{"runId": "truncat');
    const before = await treeDigest(root);
    const gc = await graft(['artifacts', 'gc', '--artifacts', root], work);
    expectUsageError(gc, new RegExp(`gc stopped before removing anything.*${runId}`, 's'), 'gc');
    expect(await treeDigest(root)).toBe(before);
  });
});

describe('12. readers do not lose an artifact to a concurrent --force', () => {
  it('a reader reading the artifact by path throughout forced rebuilds (and split --force runs) keeps finding it', async () => {
    const root = await freshStore();
    const artifact = join(root, 'ingest', keys.ingest);
    const files = (JSON.parse(await readFile(join(artifact, 'manifest.json'), 'utf8')) as { files: { path: string }[] }).files.map((f) => join(artifact, f.path));
    let reading = true;
    let reads = 0;
    const failures: string[] = [];
    // What a stage does with its input: read the files by path, one after the other.
    const reader = (async () => {
      while (reading) {
        for (const file of files) {
          try {
            await readFile(file);
            reads++;
          } catch (error) {
            failures.push(`${file}: ${(error as NodeJS.ErrnoException).code}`);
          }
        }
      }
    })();
    const forced: GraftResult[] = [];
    const splits: GraftResult[] = [];
    await Promise.all([
      (async () => {
        for (let i = 0; i < 3; i++) forced.push(await run(['run', 'ingest', '--force', '--artifacts', root]));
      })(),
      (async () => {
        for (let i = 0; i < 3; i++) splits.push(await run(['run', 'split', '--force', '--artifacts', root]));
      })(),
    ]);
    reading = false;
    await reader;
    forced.forEach((r, i) => expectOk(r, `ingest --force #${i}`));
    splits.forEach((r, i) => expectOk(r, `split --force #${i}`));
    expect(reads, 'the reader ran throughout').toBeGreaterThan(100);
    // The old artifact leaves only by the rename that puts the new one in its place, so a read by
    // path can miss it only in the microseconds between those two renames: at most once per
    // forced run (before the fix, the artifact was gone for the whole rebuild: many misses).
    expect(failures.length, failures.slice(0, 5).join('\n')).toBeLessThanOrEqual(forced.length);
    expectOk(await graft(['artifacts', 'verify', '--artifacts', root], work), 'verify');
  }, 240_000);
});

describe('13/14. locks: foreign and future-stamped ones expire; a waiter says who it waits for and records a reuse as a hit', () => {
  async function plantLock(root: string, holder: Record<string, unknown>, mtime: Date): Promise<string> {
    const file = join(root, '.locks', 'ingest', `${keys.ingest}.lock`);
    await mkdir(join(root, '.locks', 'ingest'), { recursive: true });
    await writeFile(file, JSON.stringify({ token: 'f00d', createdAt: new Date().toISOString(), ...holder }));
    await utimes(file, mtime, mtime);
    return file;
  }

  it('a lock of another host stamped an hour in the future does not block run, and gc clears it', async () => {
    const root = join(work, `store-${++counter}`);
    const future = new Date(Date.now() + 3600_000);
    await plantLock(root, { pid: 4242, hostname: 'some-other-host' }, future);
    const running = startGraft(['run', 'ingest', '--config', 'cfg.json', '--artifacts', root], work);
    const finished = await Promise.race([running.exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000))]);
    if (finished === 'timeout') await running.kill9();
    expect(finished, `graft run waited on the future-stamped lock:\n${running.output().stderr.slice(-2000)}`).toMatchObject({ code: 0 });

    const other = await freshStore();
    const file = await plantLock(other, { pid: 4242, hostname: 'some-other-host' }, future);
    const gc = await graft(['artifacts', 'gc', '--artifacts', other], work);
    expectOk(gc, 'gc');
    expect(gc.stdout).toContain(`removed ${file}`);
    expect(await ls(join(other, '.locks', 'ingest'))).toEqual([]);
  }, 90_000);

  it('waiting names the holder and its heartbeat; reusing what it built is recorded as a hit', async () => {
    const root = join(work, `store-${++counter}`);
    await mkdir(root);
    // A live holder: this test process, on this host, with a fresh heartbeat.
    const file = await plantLock(root, { pid: process.pid, hostname: hostname() }, new Date());
    const waiting = startGraft(['run', 'ingest', '--config', 'cfg.json', '--artifacts', root, '--json'], work);
    await waitFor(async () => (/is being built by/.test(waiting.output().stderr) ? true : undefined), 'the waiting line', 60_000);
    const line = waiting.output().stderr.split('\n').find((l) => /is being built by/.test(l))!;
    expect(line).toContain(`pid ${process.pid} on ${hostname()}`);
    expect(line).toMatch(/last heartbeat \d+ s ago/);
    // "The other process" publishes the artifact, then releases its lock.
    await mkdir(join(root, 'ingest'), { recursive: true });
    await cp(join(base, 'ingest', keys.ingest), join(root, 'ingest', keys.ingest), { recursive: true });
    await rm(file);
    const exit = await waiting.exited;
    const result = waiting.output();
    expect(exit.code, result.stderr.slice(-2000)).toBe(0);
    const entry = lastJson(result.stdout).stages.ingest;
    expect(entry.cached).toBe(true);
    const [runId] = await ls(join(root, 'runs'));
    const record = JSON.parse(await readFile(join(root, 'runs', runId!, 'run.json'), 'utf8'));
    expect(record.stages.ingest.cached).toBe(true);
    expect(record.stages.ingest.durationMs).not.toBe(JSON.parse(await readFile(join(root, 'ingest', keys.ingest, 'manifest.json'), 'utf8')).durationMs);
  }, 90_000);
});

describe('property: random foreign files, links and manifests in a store', () => {
  type Place = 'root' | 'stage' | 'artifact' | 'tmp' | 'locks' | 'checkpoints' | 'runs';
  type Thing = 'file' | 'dir' | 'link-dir' | 'link-file' | 'fake-artifact';
  const names = ['notes', 'a'.repeat(64), `ingest.${'d'.repeat(64)}.999999.abcdef123456`, 'Cargo.lock', `${'e'.repeat(64)}.lock`, 'manifest.json', 'phase-one', 'runs', '.tmp', 'train.arrow'];
  const addition = fc.record({
    place: fc.constantFrom<Place>('root', 'stage', 'artifact', 'tmp', 'locks', 'checkpoints', 'runs'),
    thing: fc.constantFrom<Thing>('file', 'dir', 'link-dir', 'link-file', 'fake-artifact'),
    name: fc.constantFrom(...names),
    manifest: fc.oneof(fc.constant('copy'), fc.json(), fc.constant('')),
  });
  const scenario = fc.record({
    additions: fc.array(addition, { minLength: 1, maxLength: 6 }),
    linkInternal: fc.subarray(['.tmp', '.locks', '.checkpoints']),
  });

  it('gc, verify and a cached run change nothing outside the store, and no foreign entry in it', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ additions, linkInternal }) => {
        const root = await freshStore();
        const outside = await victim();
        const realManifest = await readFile(join(root, 'ingest', keys.ingest, 'manifest.json'), 'utf8');
        /** Foreign entries inside the store that must survive (path -> digest-able). */
        const mustSurvive: string[] = [];
        for (const name of linkInternal) {
          await rm(join(root, name), { recursive: true, force: true });
          await symlink(join(outside, 'phase-one'), join(root, name));
          mustSurvive.push(join(root, name));
        }
        let i = 0;
        for (const { place, thing, name, manifest } of additions) {
          const parentBy: Record<Place, string> = {
            root,
            stage: join(root, 'ingest'),
            artifact: join(root, 'split', keys.split),
            tmp: join(root, '.tmp'),
            locks: join(root, '.locks', 'ingest'),
            checkpoints: join(root, '.checkpoints', 'phase-one'),
            runs: join(root, 'runs'),
          };
          const parent = parentBy[place];
          const internal = { tmp: '.tmp', locks: '.locks', checkpoints: '.checkpoints' }[place as 'tmp' | 'locks' | 'checkpoints'];
          // Creating something inside a linked internal dir would write outside the store ourselves.
          if (internal && linkInternal.includes(internal)) continue;
          await mkdir(parent, { recursive: true });
          // Every other addition gets graft's exact name pattern, the rest a unique suffix.
          const exact = i++ % 2 === 0;
          const path = join(parent, exact ? name : `${name}-${i}`);
          if ((await lstat(path).catch(() => undefined)) !== undefined) continue;
          if (thing === 'file') await writeFile(path, `foreign ${path}`);
          else if (thing === 'dir') {
            await mkdir(path);
            await writeFile(join(path, 'inside.txt'), 'foreign');
          } else if (thing === 'link-dir') await symlink(join(outside, 'Documents'), path);
          else if (thing === 'link-file') await symlink(join(outside, 'ingest', 'Cargo.lock'), path);
          else {
            await mkdir(path);
            await writeFile(join(path, 'manifest.json'), manifest === 'copy' ? realManifest : manifest);
            await writeFile(join(path, 'train.arrow'), 'not arrow');
          }
          // Entries that are graft's by their place and name: a temp dir with graft's name in .tmp
          // (gc removes a dead one), a sha256-named lock file (graft's, maybe half-written), and
          // anything inside an artifact (part of it; a corrupt artifact is rebuilt whole).
          const graftsOwn =
            place === 'artifact' ||
            (place === 'tmp' && exact && name.startsWith('ingest.') && (thing === 'dir' || thing === 'fake-artifact')) ||
            (place === 'locks' && exact && name.endsWith('.lock') && thing === 'file');
          if (!graftsOwn) mustSurvive.push(path);
        }
        const outsideBefore = await treeDigest(outside);
        const survivorsBefore = await Promise.all(mustSurvive.map((p) => treeDigest(p)));

        await graft(['artifacts', 'gc', '--artifacts', root], work);
        await graft(['artifacts', 'verify', '--artifacts', root], work);
        await run(['run', 'split', '--artifacts', root]);

        expect(await treeDigest(outside)).toBe(outsideBefore);
        expect(await Promise.all(mustSurvive.map((p) => treeDigest(p)))).toEqual(survivorsBefore);
      }),
      { numRuns: 6 },
    );
  }, 600_000);
});
