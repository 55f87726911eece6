/**
 * The record of one `graft run`: `<store>/runs/<run-id>/run.json` (+ `log.ndjson`).
 * Written when the run starts (status 'running') and rewritten after every stage, so a
 * crashed run still shows how far it got. `graft runs ls` and `graft compare` read only this.
 */
export interface StageRunRecord {
  /** Stage package used by this entry ('phase-two' for an entry named 'full-finetune'). */
  stage: string;
  stageVersion: string;
  key: string;
  /** Absolute path of the artifact directory. */
  path: string;
  /** True when the artifact already existed (cache hit), here or on the remote. */
  cached: boolean;
  /** True when it was pulled from the remote (`graft run --remote`) rather than found in the local store. */
  pulled?: boolean;
  durationMs: number;
  params: Record<string, unknown>;
  /** Input slot -> upstream entry name. */
  inputs: Record<string, string>;
  metrics: Record<string, unknown>;
}

export interface RunRecord {
  runId: string;
  createdAt: string;
  finishedAt?: string;
  /** 'interrupted' is never written: listRuns reports a 'running' run whose process is gone that way. */
  status: 'running' | 'succeeded' | 'failed' | 'interrupted';
  /** The graft process and host, so a run killed mid-way can be told from one still going. */
  pid?: number;
  hostname?: string;
  error?: { code: string; message: string; stage?: string };
  /** The `graft run <target>` target: an entry name or 'all'. */
  target: string;
  configPath: string;
  configName: string;
  /** The resolved config (defaults filled in, --set/--seed applied). */
  config: unknown;
  seed?: number;
  backend: { requested: string; used?: string };
  gitCommit?: string;
  versions: { graft: string; node: string; tfjs?: string };
  /** Entry name -> what happened to it, in execution order. */
  stages: Record<string, StageRunRecord>;
}

/** The training stages' learning curve (`metrics.curve`), drawn by `graft compare --plot`. */
export type { CurvePoint } from '@graft/core';
