import { computeKey, type ArtifactStore } from '@graft/artifacts';
import { GraftError, type InputArtifact, type ProgressReporter, type SelectedBackend } from '@graft/core';
import { keySpecFor, materialiseEntry, openInputArtifact, type SharedArtifacts, type StageRegistry } from '@graft/pipeline';
import type { Logger } from 'pino';
import type { BuildUnit } from './plan.ts';
import { SWEEP_ERROR_CODES } from './error-codes.ts';

export interface ExecuteUnitOptions {
  registry: StageRegistry;
  store: ArtifactStore;
  /** The unit's records go to a child of it (entry, stage, key). */
  logger: Logger;
  createProgress: (entry: string) => ProgressReporter;
  /** The compute backend for stages that compute; called only when such a unit builds (once per process is the caller's to ensure). */
  selectBackend: (requested: string, logger: Logger) => Promise<SelectedBackend>;
  /** Inputs missing locally are pulled from it, and the unit's artifact is pushed to it. */
  remote?: SharedArtifacts;
  /** Rebuild even when the key exists. */
  force?: boolean;
  /** Resume from checkpoints (default true). */
  resume?: boolean;
  /** On a corrupt cached artifact: rebuild it (default) or stop with an error. */
  rebuildCorrupt?: boolean;
}

/** What executing one unit did; plain JSON (it crosses processes and queues). */
export interface UnitResult {
  id: string;
  key: string;
  stage: string;
  entry: string;
  /** 'built' here; 'cached' found in the store (or built meanwhile by another process); 'pulled' from the remote. */
  outcome: 'built' | 'cached' | 'pulled';
  /** The artifact directory in this store. */
  path: string;
  stageVersion: string;
  /** The build's own duration (from the manifest) when built, else how long finding it took. */
  durationMs: number;
  metrics: Record<string, unknown>;
  /** From the manifest's producer: the backend and tfjs version that built it. */
  backend?: string;
  tfjs?: string;
}

/**
 * Executes ONE unit of a plan: opens its inputs (from the store, or pulled from the remote),
 * re-derives its key from the stage, params and input keys (a mismatch means other source
 * data or another graft version than the plan's: refused, since the artifact would not be
 * the one planned), then hits, pulls or builds it exactly as `graft run` does (the store's
 * per-key lock makes concurrent executions of one unit build it once).
 */
export async function executeUnit(unit: BuildUnit, options: ExecuteUnitOptions): Promise<UnitResult> {
  const { registry, store } = options;
  const started = performance.now();
  const stage = registry.get(unit.stage);
  if (!stage) {
    throw new GraftError(SWEEP_ERROR_CODES.unknownStage, `Unit ${unit.entry} ${unit.key.slice(0, 12)} needs stage "${unit.stage}", which this graft does not have (stages: ${[...registry.keys()].join(', ')}). Run it with the graft version that planned it.`);
  }
  const log = options.logger.child({ entry: unit.entry, stage: stage.name, key: unit.key.slice(0, 12) });
  const rebuildCorrupt = options.rebuildCorrupt ?? true;
  const inputs: Record<string, InputArtifact> = {};
  for (const [slot, input] of Object.entries(unit.inputs)) {
    const inputStage = registry.get(input.stage);
    if (!inputStage) throw new GraftError(SWEEP_ERROR_CODES.unknownStage, `Unit ${unit.entry} ${unit.key.slice(0, 12)}: its input "${slot}" comes from stage "${input.stage}", which this graft does not have.`);
    const artifact = await openInputArtifact(store, inputStage, input.key, { logger: log, rebuildCorrupt, ...(options.remote ? { remote: options.remote } : {}) });
    if (!artifact) {
      throw new GraftError(
        SWEEP_ERROR_CODES.inputMissing,
        `Unit ${unit.entry} ${unit.key.slice(0, 12)} needs its input "${slot}" (${input.stage} ${input.key.slice(0, 12)}), which is neither in the store ${store.root}${options.remote ? ` nor on ${options.remote.url}` : ''}. Build the units it needs first.`,
      );
    }
    inputs[slot] = artifact;
  }
  const spec = await keySpecFor(stage, unit.params, Object.fromEntries(Object.entries(inputs).map(([slot, artifact]) => [slot, artifact.key])));
  const key = computeKey(spec);
  if (key !== unit.key) {
    throw new GraftError(
      SWEEP_ERROR_CODES.keyMismatch,
      `Unit ${unit.entry} was planned as ${stage.name} ${unit.key.slice(0, 12)}, but here its stage version, params, inputs and sources hash to ${key.slice(0, 12)}: this machine has other source data or another graft version than the planner. Plan the sweep again here, or run the same graft on the same data.`,
    );
  }
  let compute: Promise<SelectedBackend> | undefined;
  const { artifact, cached, pulled } = await materialiseEntry({
    store,
    stage,
    entryName: unit.entry,
    params: unit.params,
    inputs,
    key,
    sources: spec.sources,
    force: options.force ?? false,
    logger: log,
    createProgress: options.createProgress,
    resume: options.resume ?? true,
    rebuildCorrupt,
    backend: unit.backend,
    selectBackend: (stageLog) => (compute ??= options.selectBackend(unit.backend, stageLog)),
    ...(options.remote ? { remote: options.remote } : {}),
  });
  const { producer } = artifact.manifest;
  return {
    id: unit.id,
    key,
    stage: stage.name,
    entry: unit.entry,
    outcome: pulled ? 'pulled' : cached ? 'cached' : 'built',
    path: artifact.path,
    stageVersion: stage.version,
    durationMs: cached ? Math.round(performance.now() - started) : artifact.manifest.durationMs,
    metrics: artifact.manifest.metrics,
    ...(producer.backend ? { backend: producer.backend } : {}),
    ...(producer.tfjs ? { tfjs: producer.tfjs } : {}),
  };
}
