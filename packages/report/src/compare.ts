import { UsageError, canonicalJson } from '@graft/core';
import type { RunRecord } from '@graft/runs';
import { flattenMetrics, flattenParams } from './metrics.ts';
import { REPORT_ERROR_CODES } from './error-codes.ts';
import { runHeader, type RunHeader } from './list.ts';

/** The runs being compared, in the order given; the first is the baseline of every delta. */
export interface ComparedRun extends RunHeader {
  backend: string;
}

/** A param whose value is not the same in every run. `values[i]` belongs to runs[i]; null = absent. */
export interface ParamDifference {
  /** `entry.param[.sub]`, or `backend` / `seed` for the run-wide settings. */
  path: string;
  values: unknown[];
}

/**
 * One config entry across the runs. Same key ⇒ same artifact (same stage, version,
 * params and inputs), so a shared entry's metrics are identical by construction.
 */
export interface EntryComparison {
  entry: string;
  stage: string;
  /** Artifact key per run; null where the run did not build or reuse this entry. */
  keys: (string | null)[];
  /** Per run: the artifact came from the cache. */
  cached: (boolean | null)[];
  artifact: 'shared' | 'differs';
}

export interface MetricComparison {
  entry: string;
  metric: string;
  values: (number | null)[];
  /** values[i] - values[0]; null when either is missing (deltas[0] is 0 when present). */
  deltas: (number | null)[];
}

export interface MetricSpread {
  entry: string;
  metric: string;
  /** Runs of the group that have this metric. */
  n: number;
  mean: number;
  /** Sample standard deviation (n - 1); null when n < 2. */
  std: number | null;
}

/** Runs that differ only by seed: the same experiment repeated, summarised as mean ± std. */
export interface SeedGroup {
  runIds: string[];
  seeds: (number | null)[];
  metrics: MetricSpread[];
}

export interface Comparison {
  runs: ComparedRun[];
  params: ParamDifference[];
  entries: EntryComparison[];
  metrics: MetricComparison[];
  seedGroups: SeedGroup[];
}

interface EntryView {
  stage: string;
  params: Record<string, unknown>;
}

/**
 * Every entry of a run with its params: the resolved config's entries (so entries a
 * narrower target skipped still show their params), then what actually ran on top.
 */
function entriesOf(run: RunRecord): Map<string, EntryView> {
  const out = new Map<string, EntryView>();
  const configEntries = (run.config as { entries?: unknown } | null | undefined)?.entries;
  if (Array.isArray(configEntries)) {
    for (const entry of configEntries as { name?: unknown; stage?: unknown; params?: unknown }[]) {
      if (typeof entry?.name !== 'string') continue;
      out.set(entry.name, {
        stage: typeof entry.stage === 'string' ? entry.stage : '',
        params: isRecord(entry.params) ? entry.params : {},
      });
    }
  }
  for (const [name, stage] of Object.entries(run.stages)) {
    out.set(name, { stage: stage.stage, params: isRecord(stage.params) ? stage.params : (out.get(name)?.params ?? {}) });
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Every param of a run as flat paths, including the run-wide backend and seed. */
function paramsOf(run: RunRecord): Map<string, unknown> {
  const out = new Map<string, unknown>();
  // The requested backend, not the one used: a run served entirely from the cache records
  // no `used`, and that must not make it look like a different experiment.
  out.set('backend', run.backend.requested);
  out.set('seed', run.seed ?? null);
  for (const [name, entry] of entriesOf(run)) {
    for (const [path, value] of flattenParams(entry.params, name)) out.set(path, value);
  }
  return out;
}

/** Param paths that are seeds: the run-wide one and every entry's `seed` param. */
function isSeedPath(path: string): boolean {
  return path === 'seed' || path.endsWith('.seed');
}

/** Union of keys in first-seen order: entries stay in execution order. */
function unionInOrder<T>(lists: Iterable<T>[]): T[] {
  const seen = new Set<T>();
  for (const list of lists) for (const item of list) seen.add(item);
  return [...seen];
}

/**
 * Compares runs side by side (anchors: `dvc exp show`, `dvc metrics diff`): the params
 * that differ, which artifacts the runs share, every numeric metric with its delta vs the
 * first run, and, for runs that repeat one experiment under different seeds, mean ± std.
 */
export function compareRuns(runs: readonly RunRecord[]): Comparison {
  if (runs.length === 0) throw new UsageError(REPORT_ERROR_CODES.badArguments, 'Name at least one run to compare (e.g. graft compare latest latest~1).');
  const params = runs.map(paramsOf);
  const paramDiffs: ParamDifference[] = [];
  for (const path of unionInOrder(params.map((p) => p.keys()))) {
    const values = params.map((p) => (p.has(path) ? (p.get(path) ?? null) : null));
    const first = canonicalJson(values[0]);
    if (values.some((v) => canonicalJson(v) !== first)) paramDiffs.push({ path, values });
  }
  // An entry's seed that just follows the run-wide seed (the usual case: `seed` or --seed
  // fills every entry's seed param) would repeat the `seed` row once per entry.
  const runSeeds = params.map((p) => p.get('seed') ?? null);
  const followsRunSeed = (d: ParamDifference): boolean => d.path.endsWith('.seed') && d.values.every((v, i) => v === null || v === runSeeds[i]);
  const shownParams = paramDiffs.filter((d) => !followsRunSeed(d));

  const views = runs.map(entriesOf);
  const entryNames = unionInOrder([...runs.map((r) => Object.keys(r.stages)), ...views.map((v) => v.keys())]);
  const entries: EntryComparison[] = entryNames
    .filter((name) => runs.some((r) => r.stages[name]))
    .map((name) => {
      const keys = runs.map((r) => r.stages[name]?.key ?? null);
      const stage = runs.map((r) => r.stages[name]?.stage).find((s) => s !== undefined) ?? '';
      return {
        entry: name,
        stage,
        keys,
        cached: runs.map((r) => r.stages[name]?.cached ?? null),
        artifact: keys.every((k) => k !== null && k === keys[0]) ? 'shared' : 'differs',
      };
    });

  const metrics: MetricComparison[] = [];
  for (const { entry } of entries) {
    const flat = runs.map((r) => flattenMetrics(r.stages[entry]?.metrics));
    for (const metric of unionInOrder(flat.map((f) => f.keys()))) {
      const values = flat.map((f) => f.get(metric) ?? null);
      const base = values[0] ?? null;
      metrics.push({
        entry,
        metric,
        values,
        deltas: values.map((v) => (v === null || base === null ? null : v - base)),
      });
    }
  }

  return {
    runs: runs.map((r) => ({
      ...runHeader(r),
      backend: r.backend.used ?? r.backend.requested,
    })),
    params: shownParams,
    entries,
    metrics,
    seedGroups: seedGroups(runs, params),
  };
}

/**
 * Groups runs by everything but their seeds (every param, backend included). A group
 * with at least two distinct seeds is a repeated experiment; a second run with a seed
 * already in the group repeats the same artifacts and would shrink the std, so only the
 * first run per seed counts.
 */
function seedGroups(runs: readonly RunRecord[], params: Map<string, unknown>[]): SeedGroup[] {
  const groups = new Map<string, number[]>();
  runs.forEach((_, i) => {
    const rest = [...params[i]!].filter(([path]) => !isSeedPath(path)).sort(([a], [b]) => (a < b ? -1 : 1));
    const key = canonicalJson(rest);
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  const out: SeedGroup[] = [];
  for (const members of groups.values()) {
    const bySeed = new Map<string, number>();
    for (const i of members) {
      const seed = canonicalJson(seedSignature(params[i]!));
      if (!bySeed.has(seed)) bySeed.set(seed, i);
    }
    if (bySeed.size < 2) continue;
    const chosen = [...bySeed.values()];
    const spreads: MetricSpread[] = [];
    const flatByEntry = new Map<string, Map<string, number>[]>();
    // Entries whose artifact is the same in every member (ingest, split) do not depend on
    // the seed: their spread is zero by construction and only adds noise.
    const entryNames = unionInOrder(chosen.map((i) => Object.keys(runs[i]!.stages))).filter((entry) => {
      const keys = chosen.map((i) => runs[i]!.stages[entry]?.key);
      return !keys.every((k) => k === keys[0]);
    });
    for (const entry of entryNames) flatByEntry.set(entry, chosen.map((i) => flattenMetrics(runs[i]!.stages[entry]?.metrics)));
    for (const [entry, flats] of flatByEntry) {
      for (const metric of unionInOrder(flats.map((f) => f.keys()))) {
        const values = flats.map((f) => f.get(metric)).filter((v): v is number => v !== undefined);
        if (values.length < 2) continue;
        spreads.push({ entry, metric, n: values.length, ...meanStd(values) });
      }
    }
    out.push({ runIds: chosen.map((i) => runs[i]!.runId), seeds: chosen.map((i) => runs[i]!.seed ?? null), metrics: spreads });
  }
  return out;
}

/** All seed params of a run: two runs with equal signatures repeat the same experiment. */
function seedSignature(params: Map<string, unknown>): [string, unknown][] {
  return [...params].filter(([path]) => isSeedPath(path)).sort(([a], [b]) => (a < b ? -1 : 1));
}

/** Mean and sample standard deviation (Bessel-corrected); std null for a single value. */
export function meanStd(values: readonly number[]): { mean: number; std: number | null } {
  const n = values.length;
  const mean = values.reduce((sum, v) => sum + v, 0) / n;
  if (n < 2) return { mean, std: null };
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (n - 1);
  return { mean, std: Math.sqrt(variance) };
}
