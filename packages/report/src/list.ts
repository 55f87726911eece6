import { hostname } from 'node:os';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraftError, UsageError, describeSystemError } from '@graft/core';
import { z } from 'zod';
import type { RunRecord } from '@graft/pipeline';
import { formatDuration, formatMetric } from './metrics.ts';
import { renderText } from './table.ts';

/** A run directory whose run.json could not be used; listed, never fatal. */
export interface RunListWarning {
  /** The directory name under `<store>/runs/`. */
  runId: string;
  path: string;
  message: string;
}

/** Runs newest first, plus what was skipped (print `warnings` to stderr). */
export type RunList = RunRecord[] & { warnings: RunListWarning[] };

// Only what listing and comparing rely on; the rest of run.json passes through untouched,
// so records from older or newer graft versions still list.
const stageSchema = z.looseObject({
  stage: z.string(),
  key: z.string(),
  params: z.record(z.string(), z.unknown()).optional(),
  metrics: z.record(z.string(), z.unknown()).optional(),
});
const recordSchema = z.looseObject({
  runId: z.string().min(1),
  createdAt: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not a date'),
  status: z.enum(['running', 'succeeded', 'failed', 'interrupted']),
  target: z.string(),
  configName: z.string(),
  backend: z.looseObject({ requested: z.string(), used: z.string().optional() }),
  stages: z.record(z.string(), stageSchema),
});

export function runsDir(storeRoot: string): string {
  return join(storeRoot, 'runs');
}

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
    names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return withWarnings([], warnings);
    throw new GraftError('RUNS_UNREADABLE', `Cannot list runs: ${describeSystemError(error, dir)}.`, { cause: error });
  }
  const runs: RunRecord[] = [];
  await Promise.all(
    names.map(async (name) => {
      const path = join(dir, name, 'run.json');
      const warn = (message: string): void => void warnings.push({ runId: name, path, message });
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        warn(`skipped run ${name}: ${describeSystemError(error, path)}`);
        return;
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (error) {
        warn(`skipped run ${name}: ${path} is not valid JSON (${(error as Error).message})`);
        return;
      }
      const parsed = recordSchema.safeParse(json);
      if (!parsed.success) {
        const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).slice(0, 3);
        warn(`skipped run ${name}: ${path} is not a run record (${problems.join('; ')})`);
        return;
      }
      runs.push(markInterrupted(parsed.data as unknown as RunRecord));
    }),
  );
  runs.sort(newestFirst);
  warnings.sort((a, b) => (a.runId < b.runId ? -1 : 1));
  return withWarnings(runs, warnings);
}

/** A 'running' record whose process on this host is gone was killed (kill -9, power loss). */
function markInterrupted(run: RunRecord): RunRecord {
  if (run.status !== 'running' || run.pid === undefined || run.hostname !== hostname()) return run;
  try {
    process.kill(run.pid, 0);
    return run;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH' ? { ...run, status: 'interrupted' } : run;
  }
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
    throw new UsageError('RUN_NOT_FOUND', `No runs recorded in ${where}${skipped}. Start one with \`graft run\`, or point --artifacts at the store that holds them.`);
  }
  const latest = LATEST.exec(ref);
  if (latest) {
    const back = Number(latest[1] ?? 0);
    const active = runs.filter(didSomething);
    const candidates = active.length > 0 ? active : runs;
    const run = candidates[back];
    if (!run) {
      throw new UsageError(
        'RUN_NOT_FOUND',
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
    throw new UsageError('RUN_AMBIGUOUS', `"${ref}" matches ${matches.length} runs; type more of the id:\n${candidateLines(matches)}`);
  }
  const broken = runs.warnings.find((w) => w.runId === ref || w.runId.startsWith(ref));
  if (broken) throw new UsageError('RUN_UNREADABLE', `Run "${ref}" cannot be compared: ${broken.message}.`);
  throw new UsageError('RUN_NOT_FOUND', `No run "${ref}" in ${where}. Use a run id, a unique prefix of one, latest or latest~N. Recent runs:\n${candidateLines(runs)}`);
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

/** One row of `graft runs ls`; also the JSON shape of `graft runs ls --json`. */
export interface RunSummary {
  runId: string;
  createdAt: string;
  configName: string;
  target: string;
  seed: number | null;
  status: RunRecord['status'];
  /** testAccuracy of the phase-one entry (or the first phase-one-stage entry). */
  phaseOneTestAccuracy: number | null;
  /** testAccuracy of the phase-two entry (or the first phase-two-stage entry). */
  phaseTwoTestAccuracy: number | null;
  /** Wall time from start to finish; null while running. */
  durationMs: number | null;
  error: RunRecord['error'] | null;
}

export function summariseRun(run: RunRecord): RunSummary {
  const finished = run.finishedAt ? Date.parse(run.finishedAt) - Date.parse(run.createdAt) : Number.NaN;
  return {
    runId: run.runId,
    createdAt: run.createdAt,
    configName: run.configName,
    target: run.target,
    seed: run.seed ?? null,
    status: run.status,
    phaseOneTestAccuracy: keyMetric(run, 'phase-one', 'testAccuracy') ?? null,
    phaseTwoTestAccuracy: keyMetric(run, 'phase-two', 'testAccuracy') ?? null,
    durationMs: Number.isFinite(finished) ? finished : null,
    error: run.error ?? null,
  };
}

/** The entry named like the stage, else the first entry running that stage (e.g. a renamed one). */
function keyMetric(run: RunRecord, stage: string, metric: string): number | undefined {
  const entry = run.stages[stage] ?? Object.values(run.stages).find((s) => s.stage === stage);
  const value = entry?.metrics?.[metric];
  return typeof value === 'number' ? value : undefined;
}

/**
 * `graft runs ls`. The table ends with the skipped directories when `runs` came from
 * listRuns; JSON is an array of RunSummary (warnings are the caller's to print on stderr).
 */
export function formatRunList(runs: readonly RunRecord[] | RunList, format: 'table' | 'json'): string {
  const summaries = runs.map(summariseRun);
  if (format === 'json') return JSON.stringify(summaries, null, 2);
  const warnings = 'warnings' in runs ? runs.warnings : [];
  const lines: string[] = [];
  if (summaries.length === 0) {
    lines.push('No runs recorded yet. Start one with `graft run`.');
  } else {
    lines.push(
      renderText({
        headers: ['RUN', 'DATE (UTC)', 'CONFIG', 'TARGET', 'SEED', 'STATUS', 'P1 TEST', 'P2 TEST', 'DURATION'],
        align: ['left', 'left', 'left', 'left', 'right', 'left', 'right', 'right', 'right'],
        rows: summaries.map((s) => [
          s.runId,
          shortDate(s.createdAt),
          s.configName,
          s.target,
          s.seed === null ? '—' : String(s.seed),
          s.status === 'failed' && s.error?.stage ? `failed (${s.error.stage})` : s.status,
          formatMetric('testAccuracy', s.phaseOneTestAccuracy ?? undefined),
          formatMetric('testAccuracy', s.phaseTwoTestAccuracy ?? undefined),
          s.durationMs === null ? '—' : formatDuration(s.durationMs),
        ]),
      }),
    );
  }
  for (const warning of warnings) lines.push(`warning: ${warning.message}`);
  return lines.join('\n');
}
