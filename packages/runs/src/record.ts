import { z } from 'zod';

/**
 * The record of one `graft run`: `<store>/runs/<run-id>/run.json` (+ `log.ndjson`).
 * Written when the run starts (status 'running') and rewritten after every stage, so a
 * crashed run still shows how far it got. `graft runs ls` and `graft compare` read only this.
 *
 * Declared once, as the schema listRuns validates with; the types are derived from it.
 * Loose objects: fields added by a later graft survive a read by this one. Every required
 * field has been written since the first run record (pid, hostname and pulled came later
 * and are optional), so records of older versions still list.
 */
export const stageRunRecordSchema = z.looseObject({
  /** Stage package used by this entry ('phase-two' for an entry named 'full-finetune'). */
  stage: z.string(),
  stageVersion: z.string(),
  key: z.string(),
  /** Absolute path of the artifact directory. */
  path: z.string(),
  /** True when the artifact already existed (cache hit), here or on the remote. */
  cached: z.boolean(),
  /** True when it was pulled from the remote (`graft run --remote`) rather than found in the local store. */
  pulled: z.boolean().optional(),
  durationMs: z.number(),
  params: z.record(z.string(), z.unknown()),
  /** Input slot -> upstream entry name. */
  inputs: z.record(z.string(), z.string()),
  metrics: z.record(z.string(), z.unknown()),
});
export type StageRunRecord = z.output<typeof stageRunRecordSchema>;

/** 'interrupted' is never written: listRuns reports a 'running' run whose process is gone that way. */
export const RUN_STATUSES = ['running', 'succeeded', 'failed', 'interrupted'] as const;

export const runRecordSchema = z.looseObject({
  runId: z.string().min(1),
  createdAt: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not a date'),
  finishedAt: z.string().optional(),
  status: z.enum(RUN_STATUSES),
  /** The graft process and host, so a run killed mid-way can be told from one still going. */
  pid: z.number().int().optional(),
  hostname: z.string().optional(),
  error: z.looseObject({ code: z.string(), message: z.string(), stage: z.string().optional() }).optional(),
  /** The `graft run <target>` target: an entry name or 'all'. */
  target: z.string(),
  configPath: z.string(),
  configName: z.string(),
  /** The resolved config (defaults filled in, --set/--seed applied). */
  config: z.unknown(),
  seed: z.number().optional(),
  /** Set when the run is one of a sweep's (`graft run --grid/--seeds`): the sweep, the run's place in it and its grid values. */
  sweep: z.looseObject({ id: z.string(), index: z.number().int().min(0), params: z.record(z.string(), z.unknown()) }).optional(),
  backend: z.looseObject({ requested: z.string(), used: z.string().optional() }),
  gitCommit: z.string().optional(),
  versions: z.looseObject({ graft: z.string(), node: z.string(), tfjs: z.string().optional() }),
  /** Entry name -> what happened to it, in execution order. */
  stages: z.record(z.string(), stageRunRecordSchema),
});
export type RunRecord = z.output<typeof runRecordSchema>;

/** The training stages' learning curve (`metrics.curve`), drawn by `graft compare --plot`. */
export type { CurvePoint } from '@graft/core';
