import { UsageError, canonicalJson } from '@graft/core';
import { shortDate, type RunRecord, type SweepRecord } from '@graft/runs';
import { meanStd, type MetricSpread } from './compare.ts';
import { REPORT_ERROR_CODES } from './error-codes.ts';
import type { ComparisonFormat } from './format.ts';
import { runHeader, type RunHeader } from './list.ts';
import { flattenMetrics, formatMetric, formatSpread } from './metrics.ts';
import { renderMarkdown, renderText, type Align, type Table } from './table.ts';

/**
 * `graft compare sweep:<id>`: one table per sweep, one row per variant (a point of its grid),
 * the grid params that vary as columns, and every entry's test metrics as mean ± sample std
 * over the variant's seeds (anchors: W&B sweep tables, `dvc exp show` grouped by params).
 */

/** A run the sweep planned that has no usable record: what it was and why it is missing. */
export interface MissingRun {
  index: number;
  seed: number | null;
  params: Record<string, unknown>;
  /** 'not started', 'running', 'interrupted', 'failed at phase-two: [CODE] message', 'record not found', ... */
  reason: string;
  runId: string | null;
}

export interface SweepVariant {
  /** The value of every grid axis for this variant (those that vary and those that do not). */
  params: Record<string, unknown>;
  /** Finished runs of the variant, one per seed, in plan order. */
  runs: RunHeader[];
  seeds: (number | null)[];
  /** Every numeric test metric (name containing "test") of every entry, over `runs`. */
  metrics: MetricSpread[];
  /** Runs of this variant the sweep planned and that are not done. */
  missing: number;
}

export interface SweepComparison {
  sweepId: string;
  createdAt: string;
  configName: string;
  configPath: string;
  target: string;
  /** Grid keys with more than one value: the columns that tell variants apart. */
  varying: string[];
  /** Grid keys with a single value. */
  fixed: Record<string, unknown>;
  seeds: number[];
  planned: number;
  done: number;
  variants: SweepVariant[];
  missing: MissingRun[];
}

/**
 * Aggregates a sweep from its record and the store's run records. A planned run counts when a
 * succeeded record carries it: the one the sweep record names, else the newest succeeded run
 * tagged with the sweep and the run's index (an earlier attempt). A record whose keys are not
 * the ones planned (made by another graft version) is not this sweep's run and is skipped.
 */
export function compareSweep(sweep: SweepRecord, runs: readonly RunRecord[]): SweepComparison {
  const byId = new Map(runs.map((run) => [run.runId, run]));
  const matches = (run: RunRecord, planned: SweepRecord['runs'][number]) =>
    run.status === 'succeeded' && Object.entries(planned.keys).every(([entry, key]) => run.stages[entry]?.key === key);
  const done: Array<{ planned: SweepRecord['runs'][number]; run: RunRecord }> = [];
  const missing: MissingRun[] = [];
  for (const planned of sweep.runs) {
    const named = planned.runId === undefined ? undefined : byId.get(planned.runId);
    const tagged = runs.filter((run) => run.sweep?.id === sweep.sweepId && run.sweep.index === planned.index);
    const run = named && matches(named, planned) ? named : tagged.find((candidate) => matches(candidate, planned));
    if (run) {
      done.push({ planned, run });
      continue;
    }
    missing.push({ index: planned.index, seed: planned.seed ?? null, params: planned.params, runId: planned.runId ?? null, reason: missingReason(planned, named) });
  }

  const varying = sweep.grid.filter((axis) => axis.values.length > 1).map((axis) => axis.key);
  const fixed = Object.fromEntries(sweep.grid.filter((axis) => axis.values.length === 1).map((axis) => [axis.key, axis.values[0]]));
  const variants = new Map<string, { params: Record<string, unknown>; members: RunRecord[]; missing: number }>();
  const variantOf = (params: Record<string, unknown>) => {
    const id = canonicalJson(params);
    if (!variants.has(id)) variants.set(id, { params, members: [], missing: 0 });
    return variants.get(id)!;
  };
  // Every planned variant gets a row, in plan order, even one with nothing done yet.
  for (const planned of sweep.runs) variantOf(planned.params);
  for (const { planned, run } of done) variantOf(planned.params).members.push(run);
  for (const gap of missing) variantOf(gap.params).missing++;

  return {
    sweepId: sweep.sweepId,
    createdAt: sweep.createdAt,
    configName: sweep.configName,
    configPath: sweep.configPath,
    target: sweep.target,
    varying,
    fixed,
    seeds: sweep.seeds,
    planned: sweep.runs.length,
    done: done.length,
    variants: [...variants.values()].map((v) => ({
      params: v.params,
      runs: v.members.map(runHeader),
      seeds: v.members.map((run) => run.seed ?? null),
      metrics: testMetrics(v.members),
      missing: v.missing,
    })),
    missing,
  };
}

function missingReason(planned: SweepRecord['runs'][number], named: RunRecord | undefined): string {
  if (planned.runId === undefined) return 'not started';
  if (!named) return `its record ${planned.runId} was not found`;
  if (named.status === 'failed') {
    const where = named.error?.stage ? ` at ${named.error.stage}` : '';
    return `failed${where}${named.error ? `: [${named.error.code}] ${named.error.message.split('\n')[0]}` : ''}`;
  }
  if (named.status !== 'succeeded') return named.status;
  return `run ${named.runId} used other artifacts than planned (another graft version); run the sweep again`;
}

/** Mean ± std of every entry's numeric test metrics over the runs, entries in run order. */
function testMetrics(members: readonly RunRecord[]): MetricSpread[] {
  const entries: string[] = [];
  for (const run of members) for (const entry of Object.keys(run.stages)) if (!entries.includes(entry)) entries.push(entry);
  const out: MetricSpread[] = [];
  for (const entry of entries) {
    const flats = members.map((run) => flattenMetrics(run.stages[entry]?.metrics));
    const names: string[] = [];
    for (const flat of flats) for (const name of flat.keys()) if (isTestMetric(name) && !names.includes(name)) names.push(name);
    for (const metric of names) {
      const values = flats.map((flat) => flat.get(metric)).filter((v): v is number => v !== undefined);
      if (values.length > 0) out.push({ entry, metric, n: values.length, ...meanStd(values) });
    }
  }
  return out;
}

/**
 * A metric measured on the test set: its own name (the last segment) mentions test, e.g.
 * testAccuracy or newClassTestAccuracy; not a row count filed under "test" (rows.test,
 * labelCounts.test.3).
 */
function isTestMetric(name: string): boolean {
  const leaf = name.slice(name.lastIndexOf('.') + 1);
  return /test/i.test(leaf) && leaf.toLowerCase() !== 'test';
}

/** The sweep as a table (text or markdown) with a heading and the missing runs, or JSON. */
export function formatSweepComparison(c: SweepComparison, format: ComparisonFormat): string {
  if (format === 'json') return JSON.stringify(c, null, 2);
  if (format !== 'table' && format !== 'markdown') throw new UsageError(REPORT_ERROR_CODES.badFormat, `Unknown comparison format "${String(format)}"; use table, markdown or json.`);
  const columns: Array<{ entry: string; metric: string }> = [];
  for (const variant of c.variants) for (const m of variant.metrics) if (!columns.some((col) => col.entry === m.entry && col.metric === m.metric)) columns.push({ entry: m.entry, metric: m.metric });
  const table: Table = {
    headers: [...(c.varying.length ? c.varying : ['VARIANT']), 'N', ...columns.map((col) => `${col.entry} ${col.metric}`)],
    align: [...(c.varying.length ? c.varying : ['VARIANT']).map((): Align => 'left'), 'right', ...columns.map((): Align => 'right')],
    rows: c.variants.map((variant) => [
      ...(c.varying.length ? c.varying.map((key) => formatValue(variant.params[key])) : ['(one variant)']),
      `${variant.runs.length}${variant.missing ? ` of ${variant.runs.length + variant.missing}` : ''}`,
      ...columns.map((col) => {
        const m = variant.metrics.find((x) => x.entry === col.entry && x.metric === col.metric);
        if (!m) return '—';
        const cell = m.std === null ? formatMetric(m.metric, m.mean) : `${formatMetric(m.metric, m.mean)} ± ${formatSpread(m.metric, m.std)}`;
        return m.n === variant.runs.length ? cell : `${cell} (n=${m.n})`;
      }),
    ]),
  };
  const fixed = Object.entries(c.fixed).map(([key, value]) => `${key}=${formatValue(value)}`);
  const heading = `Sweep ${c.sweepId}: ${c.configName} (${c.configPath}), target ${c.target}, ${shortDate(c.createdAt)} UTC`;
  const notes = [
    `${c.done} of ${c.planned} runs done; seeds ${c.seeds.length ? c.seeds.join(', ') : 'from the config'}; mean ± sample std over seeds, N = runs per variant${fixed.length ? `; fixed: ${fixed.join(', ')}` : ''}`,
  ];
  const missingLines = c.missing.map((m) => `run ${m.index}${Object.keys(m.params).length ? ` (${Object.entries(m.params).map(([k, v]) => `${k}=${formatValue(v)}`).join(', ')}` : ' ('}${m.seed === null ? '' : `${Object.keys(m.params).length ? ', ' : ''}seed ${m.seed}`}): ${m.reason}`);
  if (format === 'markdown') {
    return [`### ${heading}`, notes.join('\n'), renderMarkdown(table), ...(missingLines.length ? [`Missing (${missingLines.length}):\n\n${missingLines.map((l) => `- ${l}`).join('\n')}`] : [])].join('\n\n');
  }
  return [
    heading,
    ...notes.map((n) => `  ${n}`),
    renderText(table, '  '),
    ...(missingLines.length ? [`  missing ${missingLines.length} of ${c.planned}; run the same command again to build them:`, ...missingLines.map((l) => `    ${l}`)] : []),
  ].join('\n');
}

function formatValue(value: unknown): string {
  if (value === undefined || value === null) return '—';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
