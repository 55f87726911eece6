import { hostname } from 'node:os';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GraftError, JsonFileError, UsageError, atomicWriteFile, describeSystemError, errnoCode, pidAlive, readJsonFile, type ErrorCodeOf } from '@graft/core';
import { runRecordSchema, type RunRecord } from './record.ts';

/**
 * `<store>/runs/` belongs to this module alone: where a run's record and log live, how a
 * record is written (atomically, fsynced), how runs are listed, which 'running' runs were
 * killed, and what `latest`, `latest~N` and id prefixes mean. The artifact store keeps its
 * hands off the directory (it reserves RUNS_DIR as a stage name); the runner and the CLI
 * ask here for paths instead of joining them.
 */

/** Top-level directory of the artifact store that holds run records; no stage may be called so. */
export const RUNS_DIR = 'runs';
export const RUN_RECORD_FILE = 'run.json';
export const RUN_LOG_FILE = 'log.ndjson';
/** Sweep records live in runs/sweeps/ (sweep-record.ts); declared here so no run is ever named so. */
export const SWEEPS_DIR = 'sweeps';

export const RUNS_ERROR_CODES = {
  /** The runs directory exists but cannot be listed. */
  listFailed: 'RUNS_UNREADABLE',
  /** A run record could not be written (disk full, read-only store). */
  writeFailed: 'RUN_RECORD_WRITE_FAILED',
  /** A run id that is not one safe path segment. */
  badRunId: 'RUN_BAD_ID',
  /** A ref (id, prefix, latest~N) that names no run. */
  notFound: 'RUN_NOT_FOUND',
  /** A prefix that names several runs. */
  ambiguous: 'RUN_AMBIGUOUS',
  /** A ref that names a run whose run.json is unusable. */
  unreadable: 'RUN_UNREADABLE',
  /** A sweep id that is not lower-case hex. */
  badSweepId: 'SWEEP_BAD_ID',
} as const;
export type RunsErrorCode = ErrorCodeOf<typeof RUNS_ERROR_CODES>;

/** Run ids become directory names: one path segment, no dots at the start (never '.', '..' or hidden). */
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Sortable, unique run id: UTC timestamp plus a random suffix. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').replace(/\..*$/, '');
  return `${stamp}-${Math.random().toString(16).slice(2, 8)}`;
}

export function runsDir(storeRoot: string): string {
  return join(storeRoot, RUNS_DIR);
}

export function runDir(storeRoot: string, runId: string): string {
  if (!RUN_ID.test(runId) || runId === SWEEPS_DIR) {
    throw new GraftError(RUNS_ERROR_CODES.badRunId, `Invalid run id ${JSON.stringify(runId)}: run ids are one path segment of letters, digits, '-', '_' and '.' (newRunId() makes them).`);
  }
  return join(runsDir(storeRoot), runId);
}

/** `<store>/runs/<run-id>/log.ndjson`: every log record of the run. */
export function runLogPath(storeRoot: string, runId: string): string {
  return join(runDir(storeRoot, runId), RUN_LOG_FILE);
}

export function runRecordPath(storeRoot: string, runId: string): string {
  return join(runDir(storeRoot, runId), RUN_RECORD_FILE);
}

/**
 * Writes `run.json` so a reader (graft runs ls, another process) sees the previous
 * record or this one, never half of one, and this one survives a crash right after:
 * the runner rewrites it after every stage, and a killed run must still show how far it got.
 */
export async function writeRunRecord(storeRoot: string, record: RunRecord): Promise<void> {
  const path = runRecordPath(storeRoot, record.runId);
  try {
    await atomicWriteFile(path, JSON.stringify(record, null, 2) + '\n');
  } catch (error) {
    throw new GraftError(RUNS_ERROR_CODES.writeFailed, `Could not write the run record: ${describeSystemError(error, path)}.`, { cause: error });
  }
}

/** A run directory whose run.json could not be used; listed, never fatal. */
export interface RunListWarning {
  /** The directory name under `<store>/runs/`. */
  runId: string;
  path: string;
  message: string;
}

/** Runs newest first, plus what was skipped (print `warnings` to stderr). */
export type RunList = RunRecord[] & { warnings: RunListWarning[] };

/**
 * Every recorded run, newest first (createdAt, then run id). A run.json that is missing,
 * unreadable, not JSON or not a run record becomes a warning, so one broken directory
 * never hides the others. No runs directory yet means no runs.
 */
export async function listRuns(storeRoot: string): Promise<RunList> {
  const dir = runsDir(storeRoot);
  const warnings: RunListWarning[] = [];
  let names: string[];
  try {
    // runs/sweeps/ holds sweep records (sweep-record.ts), not a run.
    names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.') && d.name !== SWEEPS_DIR).map((d) => d.name);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return withWarnings([], warnings);
    throw new GraftError(RUNS_ERROR_CODES.listFailed, `Cannot list runs: ${describeSystemError(error, dir)}.`, { cause: error });
  }
  const runs: RunRecord[] = [];
  await Promise.all(
    names.map(async (name) => {
      const path = join(dir, name, RUN_RECORD_FILE);
      try {
        runs.push(markInterrupted(await readJsonFile(path, runRecordSchema)));
      } catch (error) {
        warnings.push({ runId: name, path, message: `skipped run ${name}: ${skipReason(error, path)}` });
      }
    }),
  );
  runs.sort(newestFirst);
  warnings.sort((a, b) => (a.runId < b.runId ? -1 : 1));
  return withWarnings(runs, warnings);
}

function skipReason(error: unknown, path: string): string {
  if (!(error instanceof JsonFileError)) return error instanceof GraftError ? error.message : describeSystemError(error, path);
  if (error.missing) return `${path} does not exist`;
  const [first] = error.problems;
  // Bytes that are not JSON at all vs JSON that is not a run record: different fixes.
  if (error.problems.length === 1 && first !== undefined && /^(empty|not valid (JSON|UTF-8)|is a directory|unreadable)/.test(first)) {
    return `${path} ${first.startsWith('is ') ? first : `is ${first}`}`;
  }
  return `${path} is not a run record (${error.problems.slice(0, 3).join('; ')})`;
}

/** A 'running' record whose process on this host is gone was killed (kill -9, power loss). */
function markInterrupted(run: RunRecord): RunRecord {
  if (run.status !== 'running' || run.pid === undefined || run.hostname !== hostname()) return run;
  return pidAlive(run.pid) ? run : { ...run, status: 'interrupted' };
}

/** Non-enumerable, so the list still deep-equals, prints and spreads as a plain array. */
function withWarnings(runs: RunRecord[], warnings: RunListWarning[]): RunList {
  return Object.defineProperty(runs, 'warnings', { value: warnings, enumerable: false }) as RunList;
}

function newestFirst(a: RunRecord, b: RunRecord): number {
  const byDate = Date.parse(b.createdAt) - Date.parse(a.createdAt);
  if (byDate !== 0) return byDate;
  return a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0;
}

const LATEST = /^latest(?:~(\d+))?$/;

function didSomething(run: RunRecord): boolean {
  return run.status !== 'succeeded' || Object.values(run.stages).some((stage) => !stage.cached);
}

/**
 * Turns what a user types into runs, in the order given: a full run id, a unique
 * prefix, `latest` (the newest run that did something) or `latest~N` (N such runs before
 * it, like git's HEAD~N). Unknown or ambiguous refs are a UsageError listing candidates.
 *
 * "Did something" = built at least one artifact, or failed. Runs served entirely from the
 * cache are skipped by latest~N: `nx run pipeline:phase-two` runs one `graft run` per
 * upstream target, and those all-hit runs would otherwise push the previous experiment
 * out of `latest~1`. Explicit ids and prefixes still reach them.
 */
export async function resolveRunRefs(storeRoot: string, refs: string[]): Promise<RunRecord[]> {
  const runs = await listRuns(storeRoot);
  return refs.map((ref) => resolveRef(storeRoot, runs, ref));
}

function resolveRef(storeRoot: string, runs: RunList, ref: string): RunRecord {
  const where = runsDir(storeRoot);
  if (runs.length === 0) {
    const skipped = runs.warnings.length ? ` (${runs.warnings.length} unreadable run director${runs.warnings.length === 1 ? 'y was' : 'ies were'} skipped)` : '';
    throw new UsageError(RUNS_ERROR_CODES.notFound, `No runs recorded in ${where}${skipped}. Start one with \`graft run\`, or point --artifacts at the store that holds them.`);
  }
  const latest = LATEST.exec(ref);
  if (latest) {
    const back = Number(latest[1] ?? 0);
    const active = runs.filter(didSomething);
    const candidates = active.length > 0 ? active : runs;
    const run = candidates[back];
    if (!run) {
      throw new UsageError(
        RUNS_ERROR_CODES.notFound,
        `"${ref}" goes back ${back} run${back === 1 ? '' : 's'}, but ${where} holds only ${candidates.length} that built something; the oldest is latest~${candidates.length - 1}. Name older runs by id (graft runs ls).`,
      );
    }
    return run;
  }
  const exact = runs.find((r) => r.runId === ref);
  if (exact) return exact;
  const matches = runs.filter((r) => r.runId.startsWith(ref));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new UsageError(RUNS_ERROR_CODES.ambiguous, `"${ref}" matches ${matches.length} runs; type more of the id:\n${candidateLines(matches)}`);
  }
  const broken = runs.warnings.find((w) => w.runId === ref || w.runId.startsWith(ref));
  if (broken) throw new UsageError(RUNS_ERROR_CODES.unreadable, `Run "${ref}" cannot be compared: ${broken.message}.`);
  throw new UsageError(RUNS_ERROR_CODES.notFound, `No run "${ref}" in ${where}. Use a run id, a unique prefix of one, latest or latest~N. Recent runs:\n${candidateLines(runs)}`);
}

const MAX_CANDIDATES = 10;

function candidateLines(runs: readonly RunRecord[]): string {
  const shown = runs.slice(0, MAX_CANDIDATES).map((r) => `  ${r.runId}  ${shortDate(r.createdAt)}  ${r.configName}  ${r.status}`);
  if (runs.length > MAX_CANDIDATES) shown.push(`  … and ${runs.length - MAX_CANDIDATES} more (graft runs ls)`);
  return shown.join('\n');
}

/** UTC, minute precision: the same text on every machine and in tests. */
export function shortDate(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().slice(0, 16).replace('T', ' ');
}
