import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GraftError, JsonFileError, UsageError, atomicWriteFile, describeSystemError, errnoCode, readJsonFile } from '@graft/core';
import { z } from 'zod';
import { RUNS_ERROR_CODES, SWEEPS_DIR, runsDir, shortDate } from './store.ts';

/**
 * Sweep records: `<store>/runs/sweeps/<sweep-id>.json`. A sweep (`graft run --grid/--seeds`,
 * or a config's `sweep` section) is many runs of one config; its record says what was
 * planned — the grid, the seeds, every run's grid values and the key of every entry — and
 * which run record (`runs/<run-id>/run.json`, tagged with the sweep id) carried out each run.
 * `graft compare sweep:<id>` reads it to find the runs and to say which are missing.
 */

/** Sweep ids are short lower-case hex hashes of the plan (@graft/sweep); they become file names. */
const SWEEP_ID = /^[0-9a-f]{4,64}$/;

export const sweepRunSchema = z.looseObject({
  /** The run's place in the plan (variant-major, seed-minor). */
  index: z.number().int().min(0),
  seed: z.number().optional(),
  /** Grid key ("phase-two.learningRate") -> this run's value; empty for a seeds-only sweep. */
  params: z.record(z.string(), z.unknown()),
  /** Entry -> artifact key this run uses (its target and everything upstream). */
  keys: z.record(z.string(), z.string()),
  /** The run record that carried this run out, once it started; the latest attempt's. */
  runId: z.string().optional(),
});
export type SweepRun = z.output<typeof sweepRunSchema>;

export const sweepRecordSchema = z.looseObject({
  sweepId: z.string().regex(SWEEP_ID),
  createdAt: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not a date'),
  /** When a run of it last started or finished. */
  updatedAt: z.string().optional(),
  configPath: z.string(),
  configName: z.string(),
  target: z.string(),
  /** The axes in plan order. */
  grid: z.array(z.looseObject({ key: z.string(), values: z.array(z.unknown()) })),
  /** Empty when the config's seed (or the stages' defaults) was used for every run. */
  seeds: z.array(z.number()),
  runs: z.array(sweepRunSchema),
});
export type SweepRecord = z.output<typeof sweepRecordSchema>;

function checkSweepId(sweepId: string): string {
  if (!SWEEP_ID.test(sweepId)) {
    throw new UsageError(RUNS_ERROR_CODES.badSweepId, `Invalid sweep id ${JSON.stringify(sweepId)}: sweep ids are 4 to 64 lower-case hex digits (graft runs ls shows them).`);
  }
  return sweepId;
}

export function sweepsDir(storeRoot: string): string {
  return join(runsDir(storeRoot), SWEEPS_DIR);
}

export function sweepRecordPath(storeRoot: string, sweepId: string): string {
  return join(sweepsDir(storeRoot), `${checkSweepId(sweepId)}.json`);
}

/** Atomic and fsynced, like run.json: a reader sees the previous record or this one. */
export async function writeSweepRecord(storeRoot: string, record: SweepRecord): Promise<void> {
  const path = sweepRecordPath(storeRoot, record.sweepId);
  try {
    await atomicWriteFile(path, JSON.stringify(sweepRecordSchema.parse(record), null, 2) + '\n');
  } catch (error) {
    if (error instanceof z.ZodError) throw new GraftError(RUNS_ERROR_CODES.writeFailed, `Refusing to write an invalid sweep record to ${path}: ${error.message}`, { cause: error });
    throw new GraftError(RUNS_ERROR_CODES.writeFailed, `Could not write the sweep record: ${describeSystemError(error, path)}.`, { cause: error });
  }
}

/** The record of sweep `sweepId`, undefined when there is none; an unusable file is RUN_UNREADABLE naming it. */
export async function readSweepRecord(storeRoot: string, sweepId: string): Promise<SweepRecord | undefined> {
  const path = sweepRecordPath(storeRoot, sweepId);
  try {
    return await readJsonFile(path, sweepRecordSchema);
  } catch (error) {
    if (error instanceof JsonFileError && error.missing) return undefined;
    const reason = error instanceof JsonFileError ? error.problems.slice(0, 3).join('; ') : describeSystemError(error, path);
    throw new UsageError(RUNS_ERROR_CODES.unreadable, `The sweep record ${path} cannot be used (${reason}). Re-run the sweep to rewrite it.`, { cause: error });
  }
}

/** Ids of every recorded sweep, sorted; none when there is no sweeps directory. */
export async function listSweepIds(storeRoot: string): Promise<string[]> {
  const dir = sweepsDir(storeRoot);
  try {
    return (await readdir(dir))
      .filter((name) => name.endsWith('.json'))
      .map((name) => name.slice(0, -'.json'.length))
      .filter((id) => SWEEP_ID.test(id))
      .sort();
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw new GraftError(RUNS_ERROR_CODES.listFailed, `Cannot list sweeps: ${describeSystemError(error, dir)}.`, { cause: error });
  }
}

/** A sweep id or a unique prefix of one (`graft compare sweep:3fa1`) -> its record; unknown or ambiguous refs are UsageErrors listing candidates. */
export async function resolveSweepRef(storeRoot: string, ref: string): Promise<SweepRecord> {
  const ids = await listSweepIds(storeRoot);
  const matches = ids.includes(ref) ? [ref] : ids.filter((id) => id.startsWith(ref));
  if (matches.length > 1) {
    throw new UsageError(RUNS_ERROR_CODES.ambiguous, `"sweep:${ref}" matches ${matches.length} sweeps; type more of the id: ${matches.join(', ')}`);
  }
  const record = matches.length === 1 ? await readSweepRecord(storeRoot, matches[0]!) : undefined;
  if (!record) {
    const known = ids.length ? ` Recorded sweeps: ${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ', …' : ''}.` : ' No sweep is recorded there yet; start one with `graft run all --grid entry.param=[a,b]` or `--seeds 0,1,2`.';
    throw new UsageError(RUNS_ERROR_CODES.notFound, `No sweep "${ref}" in ${sweepsDir(storeRoot)}.${known}`);
  }
  return record;
}

/** One line per sweep for messages: id, date, config, runs. */
export function describeSweep(record: SweepRecord): string {
  return `${record.sweepId}  ${shortDate(record.createdAt)}  ${record.configName}  ${record.runs.length} run${record.runs.length === 1 ? '' : 's'}`;
}
