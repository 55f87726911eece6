import { join } from 'node:path';
import { MANIFEST_FILE, readManifest } from '@graft/artifacts';
import { readJsonFile } from '@graft/core';
import { z } from 'zod';
import type { ArtifactManifest } from '@graft/core';
import type { RunRecord } from '@graft/runs';
import { compareRuns, meanStd, type Comparison, type ParamDifference } from './compare.ts';
import { flattenMetrics } from './metrics.ts';

/**
 * Everything `graft report` and the UI's compare view show, as plain JSON: built on the
 * server from run records (and the manifests they name), rendered by report-html.ts, and
 * embedded in the page so the charts' data are exactly the run records' numbers.
 */
export interface ReportModel {
  generatedAt: string;
  runs: ReportRun[];
  params: ParamDifference[];
  lineage: LineageNode[];
  /** Scalar metrics per entry (compare's rows, without the unchanged shared ones). */
  metrics: Comparison['metrics'];
  curves: CurveRow[];
  classes: ClassRow[];
  confusion: ConfusionCell[];
  seedGroups: SeedSummary[];
  timings: TimingRow[];
}

export interface ReportRun {
  runId: string;
  createdAt: string;
  finishedAt: string | null;
  status: RunRecord['status'];
  configName: string;
  configPath: string;
  target: string;
  seed: number | null;
  backendRequested: string;
  backendUsed: string | null;
  gitCommit: string | null;
  hostname: string | null;
  versions: RunRecord['versions'];
  error: RunRecord['error'] | null;
}

/** One artifact of the lineage DAG: the same key in several runs is one node. */
export interface LineageNode {
  key: string;
  stage: string;
  /** Entry names that produced this key (usually one). */
  entries: string[];
  /** Upstream artifact keys. */
  inputs: string[];
  /** Runs that used this artifact, and in which of them it came from the cache. */
  runs: string[];
  cachedIn: string[];
  builtIn: string[];
  /** Used by every run of the report. */
  shared: boolean;
  /** Build time of the artifact (manifest), else the run record's. */
  durationMs: number | null;
  createdAt: string | null;
  producer: Record<string, unknown> | null;
  /** false when the store no longer holds the artifact (gc'd, another machine). */
  inStore: boolean;
}

export interface CurveRow {
  run: string;
  entry: string;
  step: number;
  valAccuracy: number;
  batchAccuracy: number | null;
  loss: number | null;
}

export interface ClassRow {
  run: string;
  entry: string;
  stage: string;
  label: number;
  count: number;
  accuracy: number | null;
  heldOut: boolean;
}

export interface ConfusionCell {
  run: string;
  entry: string;
  actual: number;
  predicted: number;
  count: number;
  /** count / images of the actual class. */
  share: number;
}

export interface SeedSummary {
  runIds: string[];
  seeds: (number | null)[];
  metrics: { entry: string; metric: string; n: number; mean: number; std: number | null; min: number; max: number; values: number[] }[];
}

export interface TimingRow {
  run: string;
  entry: string;
  stage: string;
  /** Time this run spent on the entry (about a second for a cache hit). */
  durationMs: number;
  cached: boolean;
  /** Time the artifact took to build, whichever run built it. */
  buildMs: number | null;
}

/** What the report may look up in the store for an artifact; both optional (gc'd artifacts). */
export interface ArtifactLookup {
  manifest(stage: string, key: string): Promise<ArtifactManifest | undefined>;
  /** The stage's metrics.json, for artifacts built before results carried testClasses. */
  metricsFile(stage: string, key: string): Promise<Record<string, unknown> | undefined>;
}

/** Looks artifacts up in a store directory; reads manifests only (no hashing): the report never uses the files. */
export function storeLookup(storeRoot: string): ArtifactLookup {
  const dir = (stage: string, key: string) => join(storeRoot, stage, key);
  return {
    async manifest(stage, key) {
      try {
        return await readManifest(join(dir(stage, key), MANIFEST_FILE));
      } catch {
        return undefined;
      }
    },
    async metricsFile(stage, key) {
      try {
        const value: unknown = await readJsonFile(join(dir(stage, key), 'metrics.json'), z.unknown());
        return isRecord(value) ? value : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

export const noLookup: ArtifactLookup = { manifest: async () => undefined, metricsFile: async () => undefined };

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const numberOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

interface TestClassesLike {
  labels: number[];
  count: number[];
  accuracy: (number | null)[];
  confusion: number[][];
  heldOut: number[];
}

/** metrics.testClasses, or the same numbers from an older artifact's metrics.json. */
function testClassesOf(metrics: Record<string, unknown> | undefined, file: Record<string, unknown> | undefined, heldOutFallback: number[]): TestClassesLike | undefined {
  const tc = metrics?.['testClasses'];
  if (isRecord(tc) && Array.isArray(tc['labels']) && Array.isArray(tc['confusion'])) {
    return {
      labels: tc['labels'] as number[],
      count: Array.isArray(tc['count']) ? (tc['count'] as number[]) : (tc['confusion'] as number[][]).map(sum),
      accuracy: Array.isArray(tc['accuracy']) ? (tc['accuracy'] as (number | null)[]) : [],
      confusion: tc['confusion'] as number[][],
      heldOut: Array.isArray(tc['heldOut']) ? (tc['heldOut'] as number[]) : heldOutFallback,
    };
  }
  if (!file || !Array.isArray(file['classLabels']) || !Array.isArray(file['confusion'])) return undefined;
  const labels = file['classLabels'] as number[];
  const confusion = file['confusion'] as number[][];
  const perClass = isRecord(file['perClassTestAccuracy']) ? file['perClassTestAccuracy'] : {};
  return {
    labels,
    count: confusion.map(sum),
    accuracy: labels.map((l) => numberOrNull(perClass[String(l)])),
    confusion,
    heldOut: Array.isArray(file['heldOut']) ? (file['heldOut'] as number[]) : heldOutFallback,
  };
}

function sum(row: number[]): number {
  return row.reduce((s, n) => s + n, 0);
}

/** The split's held-out classes as the run's config states them (phase-one metrics do not name them). */
function heldOutOf(run: RunRecord): number[] {
  for (const stage of Object.values(run.stages)) {
    const holdout = stage.params?.['holdout'];
    if (stage.stage === 'split' && Array.isArray(holdout)) return holdout as number[];
    const metricHoldout = stage.metrics?.['holdout'];
    if (stage.stage === 'split' && Array.isArray(metricHoldout)) return metricHoldout as number[];
  }
  return [];
}

/** Builds the report of `runs` (in the order given; the first is the baseline). */
export async function buildReportModel(runs: readonly RunRecord[], lookup: ArtifactLookup, now = new Date()): Promise<ReportModel> {
  const comparison = compareRuns(runs);
  const manifests = new Map<string, ArtifactManifest | undefined>();
  const manifestOf = async (stage: string, key: string) => {
    if (!manifests.has(key)) manifests.set(key, await lookup.manifest(stage, key));
    return manifests.get(key);
  };

  const nodes = new Map<string, LineageNode>();
  const curves: CurveRow[] = [];
  const classes: ClassRow[] = [];
  const confusion: ConfusionCell[] = [];
  const timings: TimingRow[] = [];

  for (const run of runs) {
    const heldOut = heldOutOf(run);
    for (const [entry, stage] of Object.entries(run.stages)) {
      const manifest = await manifestOf(stage.stage, stage.key);
      let node = nodes.get(stage.key);
      if (!node) {
        const inputKeys = Object.values(stage.inputs ?? {})
          .map((upstream) => run.stages[upstream]?.key)
          .filter((k): k is string => typeof k === 'string');
        node = {
          key: stage.key,
          stage: stage.stage,
          entries: [],
          inputs: manifest ? Object.values(manifest.inputs) : inputKeys,
          runs: [],
          cachedIn: [],
          builtIn: [],
          shared: false,
          durationMs: manifest?.durationMs ?? null,
          createdAt: manifest?.createdAt ?? null,
          producer: manifest ? { ...manifest.producer } : null,
          inStore: manifest !== undefined,
        };
        nodes.set(stage.key, node);
      }
      if (!node.entries.includes(entry)) node.entries.push(entry);
      if (!node.runs.includes(run.runId)) node.runs.push(run.runId);
      (stage.cached ? node.cachedIn : node.builtIn).push(run.runId);
      if (node.durationMs === null && !stage.cached) node.durationMs = stage.durationMs;

      timings.push({ run: run.runId, entry, stage: stage.stage, durationMs: stage.durationMs, cached: stage.cached, buildMs: manifest?.durationMs ?? (stage.cached ? null : stage.durationMs) });

      const metrics = stage.metrics ?? {};
      if (Array.isArray(metrics['curve'])) {
        for (const point of metrics['curve'] as unknown[]) {
          if (!isRecord(point)) continue;
          const step = numberOrNull(point['step']);
          const valAccuracy = numberOrNull(point['valAccuracy']);
          if (step === null || valAccuracy === null) continue;
          curves.push({ run: run.runId, entry, step, valAccuracy, batchAccuracy: numberOrNull(point['batchAccuracy']), loss: numberOrNull(point['loss']) });
        }
      }
      const needsFile = !isRecord(metrics['testClasses']) && (typeof metrics['testAccuracy'] === 'number' || Array.isArray(metrics['curve']));
      const tc = testClassesOf(metrics, needsFile ? await lookup.metricsFile(stage.stage, stage.key) : undefined, heldOut);
      if (tc) {
        tc.labels.forEach((label, i) => {
          classes.push({
            run: run.runId,
            entry,
            stage: stage.stage,
            label,
            count: tc.count[i] ?? 0,
            accuracy: tc.accuracy[i] ?? null,
            heldOut: tc.heldOut.includes(label),
          });
          const row = tc.confusion[i] ?? [];
          const total = sum(row);
          row.forEach((count, j) => {
            const predicted = tc.labels[j];
            if (predicted === undefined) return;
            confusion.push({ run: run.runId, entry, actual: label, predicted, count, share: total === 0 ? 0 : count / total });
          });
        });
      }
    }
  }
  for (const node of nodes.values()) node.shared = runs.every((r) => node.runs.includes(r.runId));

  const metricsShown = comparison.metrics.filter((m) => {
    const entry = comparison.entries.find((e) => e.entry === m.entry);
    return runs.length === 1 || entry?.artifact !== 'shared';
  });

  return {
    generatedAt: now.toISOString(),
    runs: runs.map((r) => ({
      runId: r.runId,
      createdAt: r.createdAt,
      finishedAt: r.finishedAt ?? null,
      status: r.status,
      configName: r.configName,
      configPath: r.configPath,
      target: r.target,
      seed: r.seed ?? null,
      backendRequested: r.backend.requested,
      backendUsed: r.backend.used ?? null,
      gitCommit: r.gitCommit ?? null,
      hostname: r.hostname ?? null,
      versions: r.versions,
      error: r.error ?? null,
    })),
    params: comparison.params,
    lineage: [...nodes.values()],
    metrics: metricsShown,
    curves,
    classes,
    confusion,
    seedGroups: comparison.seedGroups.map((g) => ({
      runIds: g.runIds,
      seeds: g.seeds,
      metrics: g.metrics.map((m) => {
        const values = g.runIds
          .map((id) => runs.find((r) => r.runId === id))
          .map((r) => flattenMetrics(r?.stages[m.entry]?.metrics).get(m.metric))
          .filter((v): v is number => v !== undefined);
        return { ...m, ...meanStd(values), n: values.length, min: Math.min(...values), max: Math.max(...values), values };
      }),
    })),
    timings,
  };
}
