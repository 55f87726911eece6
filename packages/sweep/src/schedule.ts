import { hostname } from 'node:os';
import type { ArtifactStore } from '@graft/artifacts';
import { GraftError, isGraftError, type ExitCode, type ProgressReporter } from '@graft/core';
import { GRAFT_VERSION, PIPELINE_ERROR_CODES, gitCommit, openInputArtifact, runPipeline, type RunOptions, type SharedArtifacts, type StageRegistry } from '@graft/pipeline';
import { newRunId, readSweepRecord, writeRunRecord, writeSweepRecord, type RunRecord, type StageRunRecord } from '@graft/runs';
import type { Logger } from 'pino';
import type { UnitResult } from './execute.ts';
import type { BuildUnit, PlannedRun, SweepPlan } from './plan.ts';
import { sweepRecordOf } from './record.ts';
import { SWEEP_ERROR_CODES } from './error-codes.ts';

/**
 * Running a plan on this machine: either run by run in this process (runPipeline, today's
 * serial `graft run`), or unit by unit in up to N worker processes (`--jobs N`), where every
 * unit whose inputs are ready builds while the others go on. Both record each run as a
 * normal run record (tagged with the sweep when the plan is one) and keep the sweep record.
 */

/** A failure as it crosses a process boundary: what the CLI prints and run records keep. */
export interface UnitError {
  code: string;
  message: string;
  exitCode: ExitCode;
}

/** One unit to build in a worker: the parent found no artifact to reuse (or --force). */
export interface UnitJob {
  unit: BuildUnit;
  force: boolean;
  /**
   * Evaluate learning curves on the training thread: set when the builds running at once fill
   * every core, where an evaluation worker thread would only compete with the other builds.
   */
  inlineEvaluation: boolean;
}

/** Where `--jobs` builds run: a pool of worker processes (the CLI's child processes). */
export interface UnitPool {
  /** Builds one unit; resolves with its result or rejects with its error (a GraftError). Log records and progress go to `hooks`. */
  execute(job: UnitJob, hooks: { logger: Logger; progress: ProgressReporter }): Promise<UnitResult>;
  /** 'drain': let idle workers exit; 'kill': stop every worker now (SIGTERM), waiting until they are gone. */
  close(how: 'drain' | 'kill'): Promise<void>;
}

export interface UnitFailure {
  unit: BuildUnit;
  error: UnitError;
  /** True when the unit never ran because a unit it needs failed. */
  skipped: boolean;
}

export interface PlanOutcome {
  /** One per run of the plan, in plan order. */
  records: RunRecord[];
  /** Empty when every unit succeeded. */
  failures: UnitFailure[];
}

interface CommonOptions {
  plan: SweepPlan;
  store: ArtifactStore;
  registry: StageRegistry;
  /** The logger of one run (its log.ndjson): created when the run starts. */
  loggerFor: (run: PlannedRun, runId: string) => Promise<Logger>;
  /** Rebuild the target entry (every entry for 'all') even when its artifact exists. */
  force?: boolean;
  rebuildCorrupt?: boolean;
  remote?: SharedArtifacts;
  /** Run ids, made when a run starts (tests pass fixed ones). */
  newRunId?: () => string;
}

export interface InProcessOptions extends CommonOptions {
  /** Progress reporters for one run's entries (the CLI: a bar on a terminal, records in the run's log otherwise). */
  createProgressFor: (logger: Logger) => Promise<RunOptions['createProgress']>;
  resume?: boolean;
  selectBackend: NonNullable<RunOptions['selectBackend']>;
  /** Called after each run with its record (the CLI prints a summary). */
  onRunFinished?: (record: RunRecord) => void;
}

/**
 * `--jobs 1` (and plans no two builds of which could ever overlap): the runs one after
 * another through runPipeline, exactly as `graft run` has always run them; the first
 * failure stops the rest.
 */
export async function runPlanInProcess(options: InProcessOptions): Promise<PlanOutcome> {
  const { plan, store } = options;
  const runIds: Array<string | undefined> = [];
  const previous = plan.isSweep ? await readSweepRecord(store.root, plan.sweepId).catch(() => undefined) : undefined;
  const records: RunRecord[] = [];
  for (const run of plan.runs) {
    const runId = (options.newRunId ?? newRunId)();
    runIds[run.index] = runId;
    if (plan.isSweep) await writeSweepRecord(store.root, sweepRecordOf(plan, runIds, previous));
    const logger = await options.loggerFor(run, runId);
    const record = await runPipeline({
      config: run.config,
      configPath: plan.configPath,
      registry: options.registry,
      store,
      target: plan.target,
      runId,
      logger,
      createProgress: await options.createProgressFor(logger),
      ...(options.force === undefined ? {} : { force: options.force }),
      ...(options.resume === undefined ? {} : { resume: options.resume }),
      ...(options.rebuildCorrupt === undefined ? {} : { rebuildCorrupt: options.rebuildCorrupt }),
      ...(options.remote ? { remote: options.remote } : {}),
      selectBackend: options.selectBackend,
      ...(plan.isSweep ? { sweep: sweepTag(plan, run) } : {}),
    });
    records.push(record);
    options.onRunFinished?.(record);
  }
  if (plan.isSweep) await writeSweepRecord(store.root, sweepRecordOf(plan, runIds, previous));
  return { records, failures: [] };
}

/**
 * Whether no two units of the plan can ever build at once: every unit needs the one before
 * it (a single run of a chain like ingest -> split -> phase-one -> transplant -> phase-two).
 * Worker processes buy such a plan nothing, so `graft run` keeps it in-process.
 */
export function isChain(plan: SweepPlan): boolean {
  return plan.units.every((unit, i) => i === 0 || unit.needs.includes(plan.units[i - 1]!.id));
}

export interface ParallelOptions extends CommonOptions {
  /** At most this many builds at once (one worker process each). */
  jobs: number;
  /** Cores of this machine (os.availableParallelism()); decides inline evaluation. */
  cores: number;
  pool: UnitPool;
  /**
   * A progress reporter for one build (one bar per active build on a terminal); `run` is the
   * 1-based run it is built for, undefined when the plan has one run; `logger` is that run's.
   */
  createProgress: (build: { entry: string; run?: number }, logger: Logger) => ProgressReporter;
  /** Scheduler records (not about one run) go here. */
  logger: Logger;
  /** Aborting stops every worker (Ctrl-C, SIGTERM); runPlanInParallel then rejects with INTERRUPTED. */
  signal?: AbortSignal;
  /** Leave GRAFT_EVALUATION's choice to the workers (the user set it). */
  evaluationFixed?: boolean;
  onRunFinished?: (record: RunRecord) => void;
}

type UnitState = 'waiting' | 'probing' | 'queued' | 'building' | 'done' | 'failed' | 'skipped';

/**
 * `--jobs N`: every unit whose inputs are done is first looked up here (a verified hit or a
 * pull costs no worker), else queued for the pool, which builds up to `jobs` at once. A
 * failed unit fails the units that need it (recursively) and their runs; everything else
 * goes on. Each run's record is written when it starts and after each of its entries, so
 * `graft runs ls` follows along; the unit's first user is credited with its build (cached
 * false), every other user records a cache hit, so each key is built once across the records.
 */
export async function runPlanInParallel(options: ParallelOptions): Promise<PlanOutcome> {
  const { plan, store, pool, logger } = options;
  const dependants = new Map<string, BuildUnit[]>();
  for (const unit of plan.units) for (const need of unit.needs) (dependants.get(need) ?? dependants.set(need, []).get(need)!).push(unit);
  const state = new Map<string, UnitState>(plan.units.map((unit) => [unit.id, 'waiting']));
  const results = new Map<string, UnitResult>();
  const failures: UnitFailure[] = [];
  const buildQueue: BuildUnit[] = [];
  let building = 0;
  let pending = plan.units.length;

  // Every run starts now: its record says 'running' until each of its entries settles.
  const previous = plan.isSweep ? await readSweepRecord(store.root, plan.sweepId).catch(() => undefined) : undefined;
  const runs = await Promise.all(
    plan.runs.map(async (run) => {
      const runId = (options.newRunId ?? newRunId)();
      return { run, runId, logger: await options.loggerFor(run, runId), record: startRecord(plan, run, runId), settled: new Set<string>() };
    }),
  );
  if (plan.isSweep) await writeSweepRecord(store.root, sweepRecordOf(plan, runs.map((r) => r.runId), previous));
  await Promise.all(runs.map((r) => writeRunRecord(store.root, r.record)));
  for (const r of runs) r.logger.info({ runId: r.runId, target: plan.target, config: plan.configPath, entries: Object.keys(r.run.entries), sweep: plan.isSweep ? plan.sweepId : undefined }, `run ${r.runId}: ${plan.target}`);
  logger.info(
    { units: plan.units.length, runs: plan.runs.length, jobs: options.jobs },
    `${plan.isSweep ? `sweep ${plan.sweepId}: ` : ''}${plan.runs.length} run${plan.runs.length === 1 ? '' : 's'}, ${plan.units.length} unique build${plan.units.length === 1 ? '' : 's'}, up to ${options.jobs} at once`,
  );

  const forced = (unit: BuildUnit) => options.force === true && (plan.target === 'all' || unit.usedBy.some((use) => use.entry === plan.target));

  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let interrupted = false;
  let writes = Promise.resolve();
  /** Record writes go one after another: a run's record is rewritten as each of its entries settles. */
  const save = (record: RunRecord) => {
    const copy = structuredClone(record);
    writes = writes.then(() => writeRunRecord(store.root, copy)).catch((error) => logger.warn({ err: error }, `could not write the record of run ${copy.runId}`));
  };

  const settle = (unit: BuildUnit, outcome: { result: UnitResult } | { error: UnitError; skipped: boolean }) => {
    pending--;
    for (const use of unit.usedBy) {
      const r = runs[use.run]!;
      r.settled.add(use.entry);
      if ('result' in outcome) {
        const credited = use.run === unit.run && use.entry === unit.entry;
        r.record.stages[use.entry] = stageRecordOf(r.run, use.entry, outcome.result, credited);
        if (credited && outcome.result.outcome === 'built' && outcome.result.backend) r.record.backend.used = outcome.result.backend;
        if (outcome.result.tfjs && !r.record.versions.tfjs) r.record.versions.tfjs = outcome.result.tfjs;
      } else if (!r.record.error) {
        r.record.status = 'failed';
        r.record.error = { code: outcome.error.code, message: outcome.error.message, stage: use.entry };
      }
      r.record.stages = inRunOrder(r.run, r.record.stages);
      if (r.settled.size === Object.keys(r.run.entries).length) {
        r.record.status = r.record.error ? 'failed' : 'succeeded';
        r.record.finishedAt = new Date().toISOString();
        r.logger.info({ status: r.record.status, runId: r.runId }, `run ${r.runId} ${r.record.status}`);
        options.onRunFinished?.(r.record);
      }
      save(r.record);
    }
    if ('result' in outcome) {
      state.set(unit.id, 'done');
      results.set(unit.id, outcome.result);
      for (const next of dependants.get(unit.id) ?? []) if (next.needs.every((id) => state.get(id) === 'done') && state.get(next.id) === 'waiting') void start(next);
    } else {
      state.set(unit.id, outcome.skipped ? 'skipped' : 'failed');
      failures.push({ unit, error: outcome.error, skipped: outcome.skipped });
      for (const next of dependants.get(unit.id) ?? []) {
        if (state.get(next.id) !== 'waiting') continue;
        const error: UnitError = { code: SWEEP_ERROR_CODES.upstreamFailed, message: `not built: ${unit.entry} ${unit.key.slice(0, 12)} (which it needs) failed`, exitCode: 1 };
        runs[next.run]!.logger.warn(`${next.entry}: not built, ${unit.entry} failed`);
        settle(next, { error, skipped: true });
      }
    }
    dispatch();
    if (pending === 0 || (interrupted && building === 0 && ![...state.values()].includes('probing'))) finish();
  };

  /** A unit whose inputs are done: reuse it if the store or the remote has it, else queue its build. */
  const start = async (unit: BuildUnit): Promise<void> => {
    state.set(unit.id, 'probing');
    const log = runs[unit.run]!.logger.child({ entry: unit.entry, stage: unit.stage, key: unit.key.slice(0, 12) });
    try {
      const found = forced(unit) ? undefined : await probe(unit, log);
      if (found) return settle(unit, { result: found });
      state.set(unit.id, 'queued');
      buildQueue.push(unit);
      dispatch();
    } catch (error) {
      settle(unit, { error: asUnitError(error), skipped: false });
    }
  };

  const probe = async (unit: BuildUnit, log: Logger): Promise<UnitResult | undefined> => {
    const started = performance.now();
    const stage = options.registry.get(unit.stage);
    if (!stage) throw new GraftError(SWEEP_ERROR_CODES.unknownStage, `Unit ${unit.entry} needs stage "${unit.stage}", which this graft does not have.`);
    const rebuildCorrupt = options.rebuildCorrupt ?? true;
    let artifact = await openInputArtifact(store, stage, unit.key, { logger: log, rebuildCorrupt });
    let pulled = false;
    if (!artifact && options.remote) {
      // A corrupt remote copy counts as absent here: the worker builds the unit and replaces it.
      artifact = await openInputArtifact(store, stage, unit.key, { logger: log, rebuildCorrupt, remote: options.remote });
      pulled = artifact !== undefined;
    }
    if (!artifact) return undefined;
    log.info(pulled ? `${unit.entry}: pulled ${unit.key.slice(0, 12)} from ${options.remote!.url}` : `${unit.entry}: cache hit ${unit.key.slice(0, 12)}`);
    if (options.remote) {
      const outcome = await options.remote.push(unit.stage, unit.key);
      if (outcome === 'uploaded') log.info(`${unit.entry}: pushed ${unit.key.slice(0, 12)} to ${options.remote.url}`);
    }
    const { producer } = artifact.manifest;
    return {
      id: unit.id,
      key: unit.key,
      stage: unit.stage,
      entry: unit.entry,
      outcome: pulled ? 'pulled' : 'cached',
      path: artifact.path,
      stageVersion: stage.version,
      durationMs: Math.round(performance.now() - started),
      metrics: artifact.manifest.metrics,
      ...(producer.backend ? { backend: producer.backend } : {}),
      ...(producer.tfjs ? { tfjs: producer.tfjs } : {}),
    };
  };

  const dispatch = () => {
    while (!interrupted && building < options.jobs && buildQueue.length > 0) {
      const unit = buildQueue.shift()!;
      building++;
      state.set(unit.id, 'building');
      // The builds about to run at once: this one, those running, those queued behind it and
      // those being looked up (on a fresh store they are builds a moment from now).
      const probing = [...state.values()].filter((s) => s === 'probing').length;
      const concurrent = Math.min(options.jobs, building + buildQueue.length + probing);
      const job: UnitJob = { unit, force: forced(unit), inlineEvaluation: !options.evaluationFixed && concurrent >= options.cores };
      const log = runs[unit.run]!.logger;
      const progress = options.createProgress({ entry: unit.entry, ...(plan.runs.length > 1 ? { run: unit.run + 1 } : {}) }, log);
      pool.execute(job, { logger: log, progress }).then(
        (result) => {
          building--;
          progress.stop();
          settle(unit, { result });
        },
        (error: unknown) => {
          building--;
          progress.stop();
          if (interrupted) {
            // Stopped, not failed: its runs keep status 'running' in their records, which
            // `graft runs ls` reports as interrupted once this process is gone (as for a
            // serial run stopped by a signal).
            state.set(unit.id, 'failed');
            if (building === 0) finish();
            return;
          }
          const failure = asUnitError(error);
          if (!interrupted) log.error({ code: failure.code }, `${unit.entry}: ${failure.message}`);
          settle(unit, { error: failure, skipped: false });
        },
      );
    }
  };

  const onAbort = () => {
    if (interrupted) return;
    interrupted = true;
    logger.warn('stopping: every build process is being stopped; artifacts being built are discarded (the store stays consistent)');
    buildQueue.length = 0;
    void pool.close('kill').then(() => finish());
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  try {
    for (const unit of plan.units) if (unit.needs.length === 0) void start(unit);
    if (plan.units.length === 0) finish();
    await finished;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await pool.close(interrupted ? 'kill' : 'drain');
    await writes;
  }
  if (interrupted) {
    const finishedUnits = [...state.values()].filter((s) => s === 'done').length;
    throw new GraftError(SWEEP_ERROR_CODES.interrupted, `Stopped before the end: ${finishedUnits} of ${plan.units.length} units were done. Run the same command again to go on (finished artifacts are reused, training resumes from checkpoints).`);
  }
  if (plan.isSweep) await writeSweepRecord(store.root, sweepRecordOf(plan, runs.map((r) => r.runId), previous));
  return { records: runs.map((r) => r.record), failures };
}

function asUnitError(error: unknown): UnitError {
  if (isGraftError(error)) return { code: error.code, message: error.message, exitCode: error.exitCode };
  return { code: PIPELINE_ERROR_CODES.unexpected, message: error instanceof Error ? error.message : String(error), exitCode: 1 };
}

function sweepTag(plan: SweepPlan, run: PlannedRun): NonNullable<RunRecord['sweep']> {
  return { id: plan.sweepId, index: run.index, params: run.params };
}

function startRecord(plan: SweepPlan, run: PlannedRun, runId: string): RunRecord {
  return {
    runId,
    createdAt: new Date().toISOString(),
    status: 'running',
    pid: process.pid,
    hostname: hostname(),
    target: plan.target,
    configPath: plan.configPath,
    configName: run.config.name,
    config: run.config,
    ...(run.config.seed === undefined ? {} : { seed: run.config.seed }),
    ...(plan.isSweep ? { sweep: sweepTag(plan, run) } : {}),
    backend: { requested: run.config.backend },
    ...(gitCommit() ? { gitCommit: gitCommit()! } : {}),
    versions: { graft: GRAFT_VERSION, node: process.version },
    stages: {},
  };
}

function stageRecordOf(run: PlannedRun, entryName: string, result: UnitResult, credited: boolean): StageRunRecord {
  const entry = run.config.entries.find((e) => e.name === entryName)!;
  return {
    stage: result.stage,
    stageVersion: result.stageVersion,
    key: result.key,
    path: result.path,
    cached: !(credited && result.outcome === 'built'),
    ...(credited && result.outcome === 'pulled' ? { pulled: true } : {}),
    durationMs: credited ? result.durationMs : 0,
    params: entry.params,
    inputs: entry.inputs,
    metrics: result.metrics,
  };
}

/** A run's stage records in its execution order (entriesFor), whatever order they settled in. */
function inRunOrder(run: PlannedRun, stages: RunRecord['stages']): RunRecord['stages'] {
  return Object.fromEntries(Object.keys(run.entries).filter((name) => Object.hasOwn(stages, name)).map((name) => [name, stages[name]!]));
}

/** One line per failure, for the error the CLI exits with. */
export function describeFailures(failures: readonly UnitFailure[], total: number): GraftError {
  const failed = failures.filter((f) => !f.skipped);
  const skipped = failures.filter((f) => f.skipped);
  const lines = failed.map((f) => `  - ${f.unit.entry} ${f.unit.key.slice(0, 12)} (run ${f.unit.run}): [${f.error.code}] ${f.error.message}`);
  if (skipped.length) lines.push(`  not built because something they need failed: ${skipped.map((f) => `${f.unit.entry} (run ${f.unit.run})`).join(', ')}`);
  const exitCode: ExitCode = failed.length > 0 && failed.every((f) => f.error.exitCode === 2) ? 2 : 1;
  return new GraftError(
    SWEEP_ERROR_CODES.unitsFailed,
    `${failed.length} of ${total} builds failed${skipped.length ? ` and ${skipped.length} were not attempted` : ''}; the others finished and are cached:\n${lines.join('\n')}\nFix the cause and run the same command again: only what is missing is built.`,
    { exitCode },
  );
}

