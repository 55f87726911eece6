import { shortDate, type RunList, type RunRecord } from '@graft/runs';
import { formatDuration, formatMetric } from './metrics.ts';
import { renderText } from './table.ts';

/** What identifies a run in every listing and comparison: its record's header fields. */
export interface RunHeader {
  runId: string;
  createdAt: string;
  configName: string;
  target: string;
  seed: number | null;
  /** The sweep the run belongs to (`graft compare sweep:<id>`), null for a run of its own. */
  sweepId: string | null;
  status: RunRecord['status'];
}

export function runHeader(run: RunRecord): RunHeader {
  return { runId: run.runId, createdAt: run.createdAt, configName: run.configName, target: run.target, seed: run.seed ?? null, sweepId: run.sweep?.id ?? null, status: run.status };
}

/** One row of `graft runs ls`; also the JSON shape of `graft runs ls --json`. */
export interface RunSummary extends RunHeader {
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
    ...runHeader(run),
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
        headers: ['RUN', 'DATE (UTC)', 'CONFIG', 'TARGET', 'SEED', 'SWEEP', 'STATUS', 'P1 TEST', 'P2 TEST', 'DURATION'],
        align: ['left', 'left', 'left', 'left', 'right', 'left', 'left', 'right', 'right', 'right'],
        rows: summaries.map((s) => [
          s.runId,
          shortDate(s.createdAt),
          s.configName,
          s.target,
          s.seed === null ? '—' : String(s.seed),
          s.sweepId ?? '—',
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
