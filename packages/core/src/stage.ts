import type { Logger } from 'pino';
import type { z } from 'zod';
import type { BackendRequest, ComputeBackend } from './backends.ts';
import type { ArtifactManifest } from './manifest.ts';

/**
 * What an artifact is, as far as the next stage is concerned: the only contract between
 * stages (DESIGN.md §2). Each kind has one format module owning its file names, reader and
 * writer: dataset and split in @graft/data, model in @graft/model, training-metrics in
 * @graft/train. A stage declares the kind each input slot needs and the kinds its own
 * artifact provides; the runner refuses a config that feeds a slot the wrong kind.
 */
export const ARTIFACT_KINDS = ['dataset', 'split', 'model', 'training-metrics'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

/** Input slot name -> the artifact kind it needs, e.g. { model: 'model', data: 'split' }. */
export type InputSlots = Readonly<Record<string, ArtifactKind>>;

/** The compute backend the runner selected for this process (tfjs name and version). */
export interface SelectedBackend {
  /** tfjs backend in use. */
  backend: ComputeBackend;
  tfjsVersion: string;
}

/** An input artifact as a stage sees it: already verified by the runner. */
export interface InputArtifact {
  key: string;
  /** Absolute path of the artifact directory. */
  path: string;
  manifest: ArtifactManifest;
}

/**
 * Progress of long work. The runner decides how it is shown (a bar on a TTY, log
 * records otherwise); stages only report.
 */
export interface ProgressReporter {
  start(label: string, total: number): void;
  update(current: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

export interface StageContext<Params, Slot extends string = string> {
  /** Params after schema validation and defaults. */
  params: Params;
  /** Keyed by the slot names in StageDefinition.inputs, each of the declared kind. */
  inputs: Readonly<Record<Slot, InputArtifact>>;
  /**
   * The key of the artifact being built (sha256 of stage, version, params, input keys and
   * sources): what identifies this build, e.g. for checkpoints.
   */
  key: string;
  /** An empty directory (inside the store's temp area) to write every output file into. */
  outDir: string;
  logger: Logger;
  progress: ProgressReporter;
  /** Compute backend requested for this run. */
  backend: BackendRequest;
  /**
   * For stages that declare `compute: true`: the backend the runner selected (once per
   * process, before the first such stage runs). Stages never select one themselves.
   */
  compute?: SelectedBackend;
  /**
   * A directory that survives a crash of this stage for this key (inside the store),
   * for checkpoints. Removed by the runner once the artifact is published.
   */
  checkpointDir: string;
  /** False when the user passed --no-resume: ignore (and overwrite) old checkpoints. */
  resume: boolean;
}

export interface StageResult {
  /** Goes into manifest.metrics and the run record. Keep it JSON. */
  metrics: Record<string, unknown>;
  /** Merged into manifest.producer, e.g. { tfjs: '4.22.0', backend: 'wasm' }. */
  producer?: Record<string, string>;
}

/**
 * What a stage package exports (DESIGN.md §2). `run` never decides caching, paths or
 * logging format; the runner does.
 */
export interface StageDefinition<Schema extends z.ZodType = z.ZodType, Slots extends InputSlots = InputSlots> {
  /** Stage package name as used in pipeline configs: 'ingest', 'split', ... */
  name: string;
  /** Bump when the output for the same params and inputs changes: it changes every key. */
  version: string;
  description: string;
  /** zod schema of the params, with defaults. Unknown keys must be rejected (z.strictObject). */
  params: Schema;
  /** Input slots and the artifact kind each needs, e.g. { model: 'model', data: 'split' }. */
  inputs: Slots;
  /** The kinds this stage's artifact provides (a slot needing any of them accepts it). */
  output: readonly ArtifactKind[];
  /** True when `run` computes with tfjs: the runner selects the backend first (ctx.compute). */
  compute?: boolean;
  run(ctx: StageContext<z.output<Schema>, keyof Slots & string>): Promise<StageResult>;
  /**
   * For stages whose params point at data outside the store (ingest's `source` dir): a
   * JSON fingerprint of that content (e.g. file sha256s). It joins the artifact key, so
   * editing the source rebuilds the entry, as DVC hashes a stage's deps. Bad params may
   * throw the same UsageError `run` would.
   */
  fingerprint?(params: z.output<Schema>): Promise<unknown>;
}

/** Identity helper that keeps the params type flowing into `run`. */
export function defineStage<Schema extends z.ZodType, const Slots extends InputSlots>(
  definition: StageDefinition<Schema, Slots>,
): StageDefinition<Schema, Slots> {
  return definition;
}

/**
 * One point of a training stage's learning curve (`metrics.curve`), recorded every
 * `evalEvery` batches as the seed notebook printed it; `graft compare --plot` draws it.
 */
export interface CurvePoint {
  /** 1-based epoch. */
  epoch: number;
  /** 1-based batch within the epoch. */
  batch: number;
  /** 1-based global training step. */
  step: number;
  /** Training loss of that step (with dropout). */
  loss: number;
  /** Accuracy on that step's batch after the update, dropout off (the seed's "Train"). */
  batchAccuracy: number;
  /** Accuracy on the whole validation set, dropout off. */
  valAccuracy: number;
}
