import { execFileSync } from 'node:child_process';
import { hostname } from 'node:os';
import { ArtifactStore, CorruptArtifactError, computeKey } from '@graft/artifacts';
import { GraftError, isGraftError, type BackendRequest, type SelectedBackend, type InputArtifact, type ProgressReporter, type StageDefinition } from '@graft/core';
import type { Logger } from 'pino';
import { entriesFor, type ResolvedConfig, type StageRegistry } from './config.ts';
import { writeRunRecord, type RunRecord, type StageRunRecord } from '@graft/runs';
import { GRAFT_VERSION } from './version.ts';
import { PIPELINE_ERROR_CODES } from './error-codes.ts';

export interface RunOptions {
  config: ResolvedConfig;
  configPath: string;
  registry: StageRegistry;
  store: ArtifactStore;
  /** 'all' or an entry name. */
  target: string;
  runId: string;
  logger: Logger;
  /** Progress reporter for one entry; the CLI picks a bar or log records. */
  createProgress: (entry: string) => ProgressReporter;
  /** Rebuild the target entry (every entry for 'all') even when its artifact exists. */
  force?: boolean;
  /** Resume training from checkpoints (default true). */
  resume?: boolean;
  /** On a corrupt cached artifact: rebuild it (default) or stop with an error. */
  rebuildCorrupt?: boolean;
  /**
   * A store shared between machines (an S3 remote): on a local miss the entry is pulled
   * from it before building, and every entry the run uses is pushed to it if missing.
   */
  remote?: SharedArtifacts;
  /**
   * Selects the compute backend for stages that declare `compute` (the CLI passes
   * @graft/model's initBackend, loaded lazily so cache hits never load tfjs). Called at
   * most once per run, before the first such stage builds; its answer goes to every one.
   */
  selectBackend?: (requested: string, logger: Logger) => Promise<SelectedBackend>;
  /** This run is one of a sweep's (@graft/sweep): recorded in run.json, so `graft compare sweep:<id>` finds it. */
  sweep?: RunRecord['sweep'];
}

/** What the runner needs of a remote (the CLI adapts @graft/remote's ArtifactRemote to it). */
export interface SharedArtifacts {
  /** Where it lives, for log lines (s3://bucket/prefix). */
  readonly url: string;
  /** Copies stage/key into the local store, verified; undefined when the remote has none. A corrupt remote copy throws CorruptArtifactError. */
  pull(stage: string, key: string): Promise<InputArtifact | undefined>;
  /** Makes sure the remote has stage/key; `overwrite` re-uploads even if present (to replace a corrupt remote copy). */
  push(stage: string, key: string, options?: { overwrite?: boolean }): Promise<'uploaded' | 'present'>;
}

/**
 * What a stage's artifact key is made of (DESIGN.md §3): stage name and version, params,
 * the upstream keys, and for a stage reading outside the store its sources fingerprint.
 * The same fields are recorded in the manifest, so the key can be re-derived from it.
 */
export async function keySpecFor(
  stage: StageDefinition,
  params: Record<string, unknown>,
  inputKeys: Record<string, string>,
): Promise<{ stage: string; stageVersion: string; params: Record<string, unknown>; inputs: Record<string, string>; sources?: unknown }> {
  return {
    stage: stage.name,
    stageVersion: stage.version,
    params,
    inputs: inputKeys,
    ...(stage.fingerprint ? { sources: await stage.fingerprint(stage.params.parse(params)) } : {}),
  };
}

let cachedCommit: { value: string | undefined } | undefined;
/** The checkout's commit, if graft runs from a git checkout (asked once per process); recorded in run records and manifests. */
export function gitCommit(): string | undefined {
  if (!cachedCommit) {
    try {
      cachedCommit = { value: execFileSync('git', ['rev-parse', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || undefined };
    } catch {
      cachedCommit = { value: undefined };
    }
  }
  return cachedCommit.value;
}

/**
 * Builds (or reuses) every entry the target needs, in order, and records the run.
 * The store's keys decide what is fresh: key = hash(stage, version, params, input keys),
 * so a changed param moves that entry's key and every downstream key, nothing upstream.
 */
export async function runPipeline(options: RunOptions): Promise<RunRecord> {
  const { config, registry, store, target, logger } = options;
  const plan = entriesFor(config, target);
  const record: RunRecord = {
    runId: options.runId,
    createdAt: new Date().toISOString(),
    status: 'running',
    pid: process.pid,
    hostname: hostname(),
    target,
    configPath: options.configPath,
    configName: config.name,
    config,
    ...(config.seed === undefined ? {} : { seed: config.seed }),
    ...(options.sweep ? { sweep: options.sweep } : {}),
    backend: { requested: config.backend },
    ...(gitCommit() ? { gitCommit: gitCommit()! } : {}),
    versions: { graft: GRAFT_VERSION, node: process.version },
    stages: {},
  };
  await writeRunRecord(store.root, record);
  logger.info({ runId: record.runId, target, config: options.configPath, entries: plan.map((e) => e.name) }, `run ${record.runId}: ${target}`);

  const built = new Map<string, InputArtifact>();
  let current: string | undefined;
  let compute: Promise<SelectedBackend> | undefined;
  const selectBackend = (log: Logger): Promise<SelectedBackend> => {
    if (!options.selectBackend) {
      return Promise.reject(new GraftError(PIPELINE_ERROR_CODES.backendNotSelected, 'this stage computes with tfjs but the runner was given no selectBackend'));
    }
    compute ??= options.selectBackend(config.backend, log);
    return compute;
  };
  try {
    for (const entry of plan) {
      current = entry.name;
      const stage = registry.get(entry.stage)!;
      const inputs: Record<string, InputArtifact> = {};
      for (const [slot, upstream] of Object.entries(entry.inputs)) inputs[slot] = built.get(upstream)!;
      const spec = await keySpecFor(stage, entry.params, Object.fromEntries(Object.entries(inputs).map(([slot, artifact]) => [slot, artifact.key])));
      const key = computeKey(spec);
      const forced = options.force === true && (target === 'all' || target === entry.name);
      const started = performance.now();
      const log = logger.child({ entry: entry.name, stage: stage.name, key: key.slice(0, 12) });
      const { artifact, cached, pulled } = await materialiseEntry({
        store,
        stage,
        entryName: entry.name,
        params: entry.params,
        inputs,
        key,
        sources: spec.sources,
        force: forced,
        logger: log,
        createProgress: options.createProgress,
        resume: options.resume ?? true,
        rebuildCorrupt: options.rebuildCorrupt ?? true,
        backend: config.backend,
        selectBackend,
        ...(options.remote ? { remote: options.remote } : {}),
      });
      const durationMs = Math.round(performance.now() - started);
      built.set(entry.name, artifact);
      record.stages[entry.name] = {
        ...stageRecord(stage, artifact, entry.params, entry.inputs, cached, cached ? durationMs : artifact.manifest.durationMs),
        ...(pulled ? { pulled: true } : {}),
      };
      const backend = artifact.manifest.producer.backend;
      if (backend && !cached) record.backend.used = backend;
      if (artifact.manifest.producer.tfjs && !record.versions.tfjs) record.versions.tfjs = artifact.manifest.producer.tfjs;
      await writeRunRecord(store.root, record);
    }
    record.status = 'succeeded';
    return record;
  } catch (error) {
    record.status = 'failed';
    record.error = {
      code: isGraftError(error) ? error.code : PIPELINE_ERROR_CODES.unexpected,
      message: error instanceof Error ? error.message : String(error),
      ...(current ? { stage: current } : {}),
    };
    throw error;
  } finally {
    record.finishedAt = new Date().toISOString();
    await writeRunRecord(store.root, record).catch((error) => logger.warn({ err: error }, 'could not write the run record'));
    logger.info({ status: record.status, runId: record.runId }, `run ${record.runId} ${record.status}`);
  }
}

function stageRecord(
  stage: StageDefinition,
  artifact: InputArtifact,
  params: Record<string, unknown>,
  inputs: Record<string, string>,
  cached: boolean,
  durationMs: number,
): StageRunRecord {
  return { stage: stage.name, stageVersion: stage.version, key: artifact.key, path: artifact.path, cached, durationMs, params, inputs, metrics: artifact.manifest.metrics };
}

/** The remote's copy of a key, pulled and verified; a corrupt remote copy is reported and left to be rebuilt (and replaced). */
async function pullShared(remote: SharedArtifacts, stage: string, key: string, log: Logger): Promise<{ artifact: InputArtifact | undefined; remoteCorrupt: boolean }> {
  try {
    return { artifact: await remote.pull(stage, key), remoteCorrupt: false };
  } catch (error) {
    if (!(error instanceof CorruptArtifactError)) throw error;
    log.warn({ problems: error.problems }, `${error.message} Building it here instead; the remote copy will be replaced.`);
    return { artifact: undefined, remoteCorrupt: true };
  }
}

/** A verified cached artifact, undefined on a miss; a corrupt one is discarded (or fatal with rebuildCorrupt false). */
async function openCached(store: ArtifactStore, stage: StageDefinition, key: string, log: Logger, rebuildCorrupt: boolean): Promise<InputArtifact | undefined> {
  try {
    return await store.open(stage.name, key);
  } catch (error) {
    if (!(error instanceof CorruptArtifactError)) throw error;
    if (!rebuildCorrupt) throw error;
    log.warn({ problems: error.problems }, `${error.message} Rebuilding it.`);
    await store.discard(stage.name, key);
    return undefined;
  }
}

/** One entry to materialise: what the runner knows about it once its inputs exist. */
export interface EntryBuild {
  store: ArtifactStore;
  stage: StageDefinition;
  /** The config's name for it, for log lines and error messages. */
  entryName: string;
  /** Params as resolved (the stage's defaults filled in), exactly as hashed into the key. */
  params: Record<string, unknown>;
  /** Slot -> the verified upstream artifact. */
  inputs: Record<string, InputArtifact>;
  /** computeKey(await keySpecFor(stage, params, input keys)). */
  key: string;
  /** The key spec's `sources` (the stage's fingerprint), recorded in the manifest. */
  sources: unknown;
  /** Build even if the key exists (the old artifact stays until the new one replaces it). */
  force: boolean;
  /** Already bound to the entry (entry, stage, key fields). */
  logger: Logger;
  createProgress: (entry: string) => ProgressReporter;
  resume: boolean;
  rebuildCorrupt: boolean;
  /** The config's backend request, handed to the stage. */
  backend: BackendRequest;
  /** Called only when the stage computes and must build. */
  selectBackend: (log: Logger) => Promise<SelectedBackend>;
  remote?: SharedArtifacts;
}

/**
 * Makes one entry's artifact exist in the store: a verified cache hit, else a pull from the
 * remote, else a build (under the key's lock; what another process published meanwhile is
 * reused as a hit); then, with a remote, makes sure the remote has it. The one place the
 * runner and @graft/sweep's unit executor decide hit, pull or build, so both record the same.
 * `cached` is true when this call built nothing.
 */
export async function materialiseEntry(build: EntryBuild): Promise<{ artifact: InputArtifact; cached: boolean; pulled: boolean }> {
  const { store, stage, entryName, key, logger: log, remote, force } = build;
  let artifact = force ? undefined : await openCached(store, stage, key, log, build.rebuildCorrupt);
  let pulled = false;
  let remoteCorrupt = false;
  if (!artifact && !force && remote) {
    ({ artifact, remoteCorrupt } = await pullShared(remote, stage.name, key, log));
    pulled = artifact !== undefined;
  }
  let cached = artifact !== undefined;
  if (artifact) {
    log.info(pulled ? `${entryName}: pulled ${key.slice(0, 12)} from ${remote!.url}` : `${entryName}: cache hit ${key.slice(0, 12)}`);
  } else {
    const outcome = await buildEntry(build);
    artifact = outcome.artifact;
    // Reusing what another process built while we waited is a hit: this run built nothing,
    // and `latest~N` / `compare` must not count it as an experiment or show the other run's time.
    cached = outcome.reused;
  }
  if (remote) {
    // A rebuilt key replaces the remote's copy (corrupt, or what --force distrusted).
    const outcome = await remote.push(stage.name, key, { overwrite: remoteCorrupt || force });
    if (outcome === 'uploaded') log.info(`${entryName}: pushed ${key.slice(0, 12)} to ${remote.url}`);
  }
  return { artifact, cached, pulled };
}

/**
 * An input that must already exist: from the store (verified), else pulled from the remote.
 * Undefined when neither has it. A corrupt local copy is discarded (rebuildCorrupt) or fatal.
 */
export async function openInputArtifact(
  store: ArtifactStore,
  stage: StageDefinition,
  key: string,
  options: { logger: Logger; rebuildCorrupt: boolean; remote?: SharedArtifacts },
): Promise<InputArtifact | undefined> {
  const local = await openCached(store, stage, key, options.logger, options.rebuildCorrupt);
  if (local || !options.remote) return local;
  return (await pullShared(options.remote, stage.name, key, options.logger)).artifact;
}

async function buildEntry(build: EntryBuild): Promise<{ artifact: InputArtifact; reused: boolean }> {
  const { store, stage, entryName, params, inputs, key, sources, force: forced, logger: log } = build;
  log.info(`${entryName}: building ${stage.name} ${key.slice(0, 12)}${forced ? ' (--force)' : ''}`);
  const pending = await store.begin(stage.name, key);
  // Another process may have published this key while we waited for its lock.
  if (!forced) {
    const raced = await openCached(store, stage, key, log, true).catch(() => undefined);
    if (raced) {
      await store.abort(pending);
      log.info(`${entryName}: built meanwhile by another run, reusing it (a cache hit)`);
      return { artifact: raced, reused: true };
    }
  }
  // --force keeps the published artifact until the new one replaces it (publish with replace).
  const started = performance.now();
  const progress = build.createProgress(entryName);
  try {
    const compute = stage.compute ? await build.selectBackend(log) : undefined;
    const result = await stage.run({
      params: stage.params.parse(params),
      inputs,
      key,
      ...(compute ? { compute } : {}),
      outDir: pending.outDir,
      logger: log,
      progress,
      backend: build.backend,
      checkpointDir: pending.checkpointDir,
      resume: build.resume,
    });
    progress.stop();
    const durationMs = Math.round(performance.now() - started);
    const artifact = await store.publish(pending, {
      stageVersion: stage.version,
      params,
      inputs: Object.fromEntries(Object.entries(inputs).map(([slot, input]) => [slot, input.key])),
      durationMs,
      producer: { graft: GRAFT_VERSION, node: process.version, ...(gitCommit() ? { gitCommit: gitCommit()! } : {}), ...(result.producer ?? {}) },
      metrics: result.metrics,
      ...(sources === undefined ? {} : { sources }),
    }, { replace: forced });
    log.info({ durationMs, metrics: summariseMetrics(result.metrics) }, `${entryName}: built in ${(durationMs / 1000).toFixed(1)} s`);
    return { artifact, reused: false };
  } catch (error) {
    progress.stop();
    await store.abort(pending).catch((abortError) => log.warn({ err: abortError }, 'could not clean up the unfinished artifact'));
    // Name the entry: in `run all` either training phase could be the one that failed.
    const message = `Entry "${entryName}" (stage ${stage.name}) failed: ${error instanceof Error ? error.message : String(error)}`;
    if (isGraftError(error)) throw new GraftError(error.code, message, { cause: error, exitCode: error.exitCode });
    throw new GraftError(PIPELINE_ERROR_CODES.stageFailed, message, { cause: error });
  }
}

/** Scalar metrics only, for one-line log records (curves stay in the artifact). */
export function summariseMetrics(metrics: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(metrics).filter(([, v]) => typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean'));
}
