import { UsageError } from '@graft/core';
import type { Comparison } from './compare.ts';
import { shortDate } from '@graft/runs';
import { formatDelta, formatMetric, formatSpread } from './metrics.ts';
import { renderMarkdown, renderText, type Align, type Table } from './table.ts';
import { REPORT_ERROR_CODES } from './error-codes.ts';

export type ComparisonFormat = 'table' | 'markdown' | 'json';

/** Keys are sha256 hex; 12 characters tell artifacts apart, as in the runner's logs. */
const SHORT_KEY = 12;

interface Section {
  title: string;
  /** A line under the title (markdown: a paragraph). */
  note?: string;
  table?: Table;
  /** Shown instead of an empty table. */
  empty?: string;
}

/**
 * Renders a comparison: `table` for terminals (aligned, no colors), `markdown` for
 * GitHub (PR comments, reports), `json` for scripts (raw numbers, null for missing).
 */
/**
 * `all: false` (the default, like `dvc metrics diff`) leaves out metrics that are equal in
 * every run and belong to an artifact all runs share: they cannot differ, and ingest's
 * label counts would bury the rows that matter.
 */
export function formatComparison(c: Comparison, format: ComparisonFormat, options: { all?: boolean } = {}): string {
  if (format === 'json') return JSON.stringify(c, null, 2);
  if (format !== 'table' && format !== 'markdown') {
    throw new UsageError(REPORT_ERROR_CODES.badFormat, `Unknown comparison format "${String(format)}"; use table, markdown or json.`);
  }
  const sections = buildSections(c, options.all ?? false);
  if (format === 'markdown') {
    return sections
      .map((s) => [`### ${s.title}`, s.note, s.table ? renderMarkdown(s.table) : `_${s.empty ?? ''}_`].filter((x) => x !== undefined).join('\n\n'))
      .join('\n\n');
  }
  return sections
    .map((s) => [s.title, ...(s.note ? [`  ${s.note}`] : []), s.table ? renderText(s.table, '  ') : `  ${s.empty ?? ''}`].join('\n'))
    .join('\n\n');
}

function buildSections(c: Comparison, all: boolean): Section[] {
  const sharedEntries = new Set(c.entries.filter((e) => e.artifact === 'shared').map((e) => e.entry));
  const unchanged = (m: Comparison['metrics'][number]) => sharedEntries.has(m.entry) && m.values.every((v) => v === m.values[0]);
  const shown = all || c.runs.length < 2 ? c.metrics : c.metrics.filter((m) => !unchanged(m));
  const hidden = c.metrics.length - shown.length;
  const ids = c.runs.map((r) => r.runId);
  const right = (n: number): Align[] => Array.from({ length: n }, () => 'right');
  const sections: Section[] = [];

  sections.push({
    title: 'Runs',
    table: {
      headers: ['RUN', 'DATE (UTC)', 'CONFIG', 'TARGET', 'SEED', 'BACKEND', 'STATUS'],
      align: ['left', 'left', 'left', 'left', 'right', 'left', 'left'],
      rows: c.runs.map((r) => [r.runId, shortDate(r.createdAt), r.configName, r.target, r.seed === null ? '—' : String(r.seed), r.backend, r.status]),
    },
  });

  sections.push({
    title: 'Params that differ',
    ...(c.params.length
      ? { table: { headers: ['PARAM', ...ids], rows: c.params.map((p) => [p.path, ...p.values.map(formatParam)]) } }
      : { empty: c.runs.length > 1 ? 'none: every run used the same params' : 'one run: nothing to compare' }),
  });

  sections.push({
    title: 'Artifacts',
    note: 'same key = same stage, version, params and inputs = the same artifact',
    ...(c.entries.length
      ? {
          table: {
            headers: ['ENTRY', 'STAGE', ...ids, 'ARTIFACT'],
            rows: c.entries.map((e) => [
              e.entry,
              e.stage,
              ...e.keys.map((k, i) => (k === null ? '—' : `${k.slice(0, SHORT_KEY)}${e.cached[i] ? ' (cached)' : ''}`)),
              e.artifact,
            ]),
          },
        }
      : { empty: 'no entry has run yet' }),
  });

  sections.push({
    title: 'Metrics',
    ...(c.runs.length > 1 ? { note: `deltas vs ${ids[0]}${hidden > 0 ? `; ${hidden} unchanged metrics of shared artifacts hidden (--all shows them)` : ''}` } : {}),
    ...(shown.length
      ? {
          table: {
            headers: ['ENTRY', 'METRIC', ...ids],
            align: ['left', 'left', ...right(ids.length)],
            rows: shown.map((m) => [
              m.entry,
              m.metric,
              ...m.values.map((v, i) => {
                const value = formatMetric(m.metric, v ?? undefined);
                const delta = m.deltas[i];
                // No "(0)" on equal values: shared artifacts would fill the table with them.
                return i === 0 || v === null || delta === null || delta === undefined || delta === 0 ? value : `${value} (${formatDelta(m.metric, delta)})`;
              }),
            ]),
          },
        }
      : { empty: 'no numeric metrics recorded' }),
  });

  for (const group of c.seedGroups) {
    sections.push({
      title: `Across seeds ${group.seeds.map((s) => (s === null ? '—' : String(s))).join(', ')} (mean ± sample std)`,
      note: `runs ${group.runIds.join(', ')}: same params except the seed`,
      table: {
        headers: ['ENTRY', 'METRIC', 'MEAN', 'STD', 'N'],
        align: ['left', 'left', 'right', 'right', 'right'],
        rows: group.metrics.map((m) => [m.entry, m.metric, formatMetric(m.metric, m.mean), formatSpread(m.metric, m.std ?? undefined), String(m.n)]),
      },
    });
  }
  return sections;
}

function formatParam(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}
