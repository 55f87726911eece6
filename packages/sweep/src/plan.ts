import { createHash } from 'node:crypto';
import { computeKey } from '@graft/artifacts';
import { UsageError, canonicalJson, type BackendRequest } from '@graft/core';
import { MAX_SWEEP_RUNS, entriesFor, keySpecFor, resolveConfig, type GridAxis, type GridOverride, type ResolvedConfig, type StageRegistry } from '@graft/pipeline';
import { SWEEP_ERROR_CODES } from './error-codes.ts';

/**
 * Planning a sweep is pure apart from reading the stages' source fingerprints (ingest hashes
 * its IDX files): configs are resolved, keys computed, nothing is built or written. Everything
 * here is plain JSON, so a plan (or one unit of it) can cross a process or a queue.
 */

/** What to plan: the config as read and the command line's say. */
export interface SweepRequest {
  /** The config file's parsed JSON (readConfigFile). */
  raw: unknown;
  /** The config's path as shown and recorded (relative to the working directory). */
  configPath: string;
  registry: StageRegistry;
  /** 'all' or an entry name. */
  target: string;
  /** `--set entry.param=value`, applied to every run before the grid. */
  set?: string[];
  backend?: string;
  /** `--grid` axes (parseGridFlag): they extend the config's `sweep.grid`, replacing an axis of the same key. */
  grid?: GridOverride[];
  /** `--seeds`: replaces the config's `sweep.seeds`. */
  seeds?: number[];
  /** `--seed N`: one seed for every run (replaces the config's `sweep.seeds`). */
  seed?: number;
}

/** One run of the plan: one grid point with one seed. */
export interface PlannedRun {
  /** Its place in `runs` (variant-major, seed-minor); the sweep record and run records use it. */
  index: number;
  seed?: number;
  /** Grid key -> this run's value, for every axis (empty without a grid). */
  params: Record<string, unknown>;
  /** The grid's values as `--set` assignments (entry.param=<JSON>), applied after the user's. */
  overrides: string[];
  /** The run's resolved config (without the sweep section): what its run record holds. */
  config: ResolvedConfig;
  /** Entry -> unit id, for every entry the target needs, in execution order. */
  entries: Record<string, string>;
}

/**
 * One artifact to materialise: the build of one entry of one run, shared by every
 * (run, entry) with the same key. Self-contained: with the registry and a store that holds
 * (or a remote that has) its inputs, executeUnit needs nothing else.
 */
export interface BuildUnit {
  /** The artifact key (it hashes the stage name, so it is unique across stages). */
  id: string;
  key: string;
  stage: string;
  /** The entry name it is built as (its first user's), for logs, bars and errors. */
  entry: string;
  /** The run whose config it is built with (its first user). */
  run: number;
  /** Resolved params, exactly as hashed into the key. */
  params: Record<string, unknown>;
  /** The config's backend request, handed to the stage. */
  backend: BackendRequest;
  /** Slot -> the upstream unit: its stage and key. */
  inputs: Record<string, { stage: string; key: string }>;
  /** Ids of the units it needs, each once. */
  needs: string[];
  /** Every (run, entry) that uses this artifact. */
  usedBy: Array<{ run: number; entry: string }>;
}

export interface SweepPlan {
  /** Short hash of the canonical plan: the same sweep on any machine has the same id. */
  sweepId: string;
  /**
   * True when a grid or a list of seeds asked for it (a sweep record is written and every
   * run is tagged); false for a plain single run, which is recorded exactly as before.
   */
  isSweep: boolean;
  configPath: string;
  configName: string;
  target: string;
  grid: GridAxis[];
  /** The seeds run for every variant; empty when the config's own seed applies. */
  seeds: number[];
  runs: PlannedRun[];
  /** Unique builds, every unit after the units it needs. */
  units: BuildUnit[];
}

/** Characters of the sha256 that make a sweep id: 48 bits, ample for one store's sweeps. */
const SWEEP_ID_LENGTH = 12;

/**
 * Plans `target` of a config over its grid and seeds: one run per (grid point, seed), every
 * run's config resolved (and validated: a bad grid or seed is a ConfigError naming it, before
 * anything runs), every entry's key computed as the runner computes it, and the builds
 * deduplicated by key: an entry shared by several runs (ingest, split, phase one of one seed)
 * and entries of one run with equal keys are one unit.
 */
export async function planSweep(request: SweepRequest): Promise<SweepPlan> {
  const { raw, registry, configPath, target } = request;
  const base = resolveConfig(raw, registry, configPath, {
    ...(request.set ? { set: request.set } : {}),
    ...(request.backend === undefined ? {} : { backend: request.backend }),
    ...(request.seed === undefined ? {} : { seed: request.seed }),
    ...(request.grid ? { grid: request.grid } : {}),
  });
  // An unknown target is a usage error before any key is computed.
  entriesFor(base, target);
  const grid = base.sweep?.grid ?? [];
  // A list of seeds (--seeds, or the config's sweep.seeds unless --seed names one) makes a sweep; --seed alone does not.
  const seedList = request.seeds ?? (request.seed === undefined ? base.sweep?.seeds : undefined);
  const seeds = seedList ?? (request.seed === undefined ? [] : [request.seed]);
  const points = crossProduct(grid);
  const runCount = points.length * Math.max(1, seeds.length);
  if (runCount > MAX_SWEEP_RUNS) {
    throw new UsageError(SWEEP_ERROR_CODES.tooManyRuns, `The grid (${points.length} variant${points.length === 1 ? '' : 's'}) and ${seeds.length} seeds make ${runCount} runs, more than the ${MAX_SWEEP_RUNS} one sweep may plan; split it into several sweeps.`);
  }

  const runs: PlannedRun[] = [];
  for (const point of points) {
    for (const seed of seeds.length > 0 ? seeds : [undefined]) {
      const overrides = point.map(({ axis, value }) => `${axis.key}=${JSON.stringify(value)}`);
      const resolved = resolveConfig(raw, registry, configPath, {
        set: [...(request.set ?? []), ...overrides],
        ...(request.backend === undefined ? {} : { backend: request.backend }),
        ...(seed === undefined ? {} : { seed }),
      });
      // The sweep section describes the whole sweep, not this run: its record keeps the run's own config.
      const { sweep: _sweep, ...config } = resolved;
      runs.push({
        index: runs.length,
        ...(seed === undefined ? {} : { seed }),
        params: Object.fromEntries(point.map(({ axis, value }) => [axis.key, value])),
        overrides,
        config,
        entries: {},
      });
    }
  }

  const units = new Map<string, BuildUnit>();
  // Fingerprints hash source files (ingest reads ~55 MB of MNIST): once per distinct spec, not per run.
  const specs = new Map<string, ReturnType<typeof keySpecFor>>();
  for (const run of runs) {
    for (const entry of entriesFor(run.config, target)) {
      const stage = registry.get(entry.stage)!;
      const inputs = Object.fromEntries(Object.entries(entry.inputs).map(([slot, upstream]) => [slot, units.get(run.entries[upstream]!)!]));
      const inputKeys = Object.fromEntries(Object.entries(inputs).map(([slot, unit]) => [slot, unit.key]));
      const memo = canonicalJson({ stage: stage.name, params: entry.params, inputs: inputKeys });
      if (!specs.has(memo)) specs.set(memo, keySpecFor(stage, entry.params, inputKeys));
      const key = computeKey(await specs.get(memo)!);
      run.entries[entry.name] = key;
      const existing = units.get(key);
      if (existing) {
        existing.usedBy.push({ run: run.index, entry: entry.name });
        continue;
      }
      units.set(key, {
        id: key,
        key,
        stage: stage.name,
        entry: entry.name,
        run: run.index,
        params: entry.params,
        backend: run.config.backend,
        inputs: Object.fromEntries(Object.entries(inputs).map(([slot, unit]) => [slot, { stage: unit.stage, key: unit.key }])),
        needs: [...new Set(Object.values(inputs).map((unit) => unit.id))],
        usedBy: [{ run: run.index, entry: entry.name }],
      });
    }
  }

  return {
    sweepId: sweepIdOf(target, runs),
    isSweep: grid.length > 0 || seedList !== undefined,
    configPath,
    configName: base.name,
    target,
    grid,
    seeds: [...seeds],
    runs,
    // Insertion order is already topological: a unit is added after the units its inputs are.
    units: [...units.values()],
  };
}

/** Every combination of the axes' values, the first axis varying slowest; one empty point without a grid. */
function crossProduct(grid: readonly GridAxis[]): Array<Array<{ axis: GridAxis; value: unknown }>> {
  let points: Array<Array<{ axis: GridAxis; value: unknown }>> = [[]];
  for (const axis of grid) points = points.flatMap((point) => axis.values.map((value) => [...point, { axis, value }]));
  return points;
}

/**
 * The hash of what the sweep is: target, and per run its seed, grid values and resolved config
 * (every entry's stage and params, so the config file's whitespace, key order or path do not
 * matter, while any param that changes an artifact does).
 */
function sweepIdOf(target: string, runs: readonly PlannedRun[]): string {
  const canonical = canonicalJson({
    sweepFormat: 1,
    target,
    runs: runs.map((run) => ({ ...(run.seed === undefined ? {} : { seed: run.seed }), params: run.params, config: run.config })),
  });
  return createHash('sha256').update(canonical, 'utf8').digest('hex').slice(0, SWEEP_ID_LENGTH);
}

/** A unit for people: "phase-one 3fa1c2d4e5f6 (run 2)". */
export function describeUnit(unit: Pick<BuildUnit, 'entry' | 'key' | 'run'>): string {
  return `${unit.entry} ${unit.key.slice(0, 12)} (run ${unit.run})`;
}
