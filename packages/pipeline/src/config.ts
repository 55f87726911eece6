import {
  BACKEND_REQUESTS,
  FileRefusedError,
  MAX_SEED,
  UsageError,
  canonicalJson,
  describeSystemError,
  formatJsonPath,
  isBackendRequest,
  readBoundedFile,
  zodProblems,
  type BackendRequest,
  type Problem,
  type StageDefinition,
} from '@graft/core';
import { z } from 'zod';
import { PIPELINE_ERROR_CODES } from './error-codes.ts';

/**
 * A pipeline config as written (all optional but `entries`) -> `resolveConfig()` ->
 * a ResolvedConfig with every default filled in. Validation collects *every* problem
 * (shape, unknown stages, params, inputs, dangling references, cycles) and throws one
 * ConfigError listing them with their JSON paths, so a user fixes a config in one pass.
 */


/**
 * Entry names: lower-case words of letters and digits joined by single '-', starting with
 * a letter, at most 64 characters ("phase-two", "full-finetune"). Names JavaScript objects
 * already carry (constructor, ...) and "all" (the CLI target) are taken.
 */
export const ENTRY_NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const ENTRY_NAME_MAX = 64;
const ENTRY_NAME_RULE = 'entry names are lower-case words of letters and digits joined by "-", starting with a letter (e.g. "phase-two", "full-finetune"), at most 64 characters, and not "all" or "constructor"';

/** Whether `name` may name an entry (see ENTRY_NAME); the reason when not. */
export function checkEntryName(name: string): string | undefined {
  if (!ENTRY_NAME.test(name) || name.length > ENTRY_NAME_MAX || name === 'all' || name in Object.prototype) return ENTRY_NAME_RULE;
  return undefined;
}

/** A pipeline config is a small hand-written JSON file; anything larger is not one. */
export const MAX_CONFIG_BYTES = 2 ** 20;
/** Deeper nesting than any config needs; checked without recursion, so absurd depth is a problem, not a stack overflow. */
const MAX_CONFIG_DEPTH = 32;

const entrySchema = z.strictObject({
  stage: z.string().describe('Stage package this entry runs: ingest, split, phase-one, transplant, phase-two'),
  description: z.string().optional(),
  params: z.record(z.string(), z.unknown()).optional().describe("The stage's params; omitted ones take the stage's defaults"),
  inputs: z
    .record(z.string(), z.string())
    .optional()
    .describe("Input slot -> name of the entry whose artifact feeds it, e.g. { \"data\": \"split\" }"),
});

/**
 * Most values one grid axis may list, and most runs one sweep may plan (grid points × seeds):
 * far beyond what one machine or one queue takes in a day, small enough that a typo (a
 * generated list of a million values) is refused before any planning.
 */
export const MAX_GRID_VALUES = 1000;
export const MAX_SWEEP_RUNS = 10_000;

const sweepSchema = z
  .strictObject({
    grid: z
      .record(z.string(), z.array(z.unknown()))
      .optional()
      .describe('"entry.param" (or "entry.param.field") -> the values to try, e.g. {"phase-two.learningRate": [1e-4, 3e-4]}; every combination of the axes becomes one variant'),
    seeds: z.array(z.number().int().min(0).max(MAX_SEED)).min(1).max(MAX_GRID_VALUES).optional().describe('One run per seed for every variant (like --seeds)'),
  })
  .describe('Runs this config as a sweep: the cross product of the grid axes and the seeds (graft run ... --grid/--seeds extend and override it)');

const configSchema = z.strictObject({
  $schema: z.string().optional(),
  name: z.string().optional(),
  description: z.string().optional(),
  backend: z.enum(BACKEND_REQUESTS).optional().describe('Compute backend for training stages (default auto)'),
  seed: z.number().int().min(0).max(MAX_SEED).optional().describe('Seed for every entry that has a seed param, unless the entry sets its own'),
  entries: z.record(z.string(), entrySchema),
  sweep: sweepSchema.optional(),
});

export type WrittenConfig = z.input<typeof configSchema>;
type WrittenEntry = z.output<typeof entrySchema>;

export interface ResolvedEntry {
  name: string;
  stage: string;
  description?: string;
  /** Params after the stage schema's defaults. */
  params: Record<string, unknown>;
  /** Input slot -> upstream entry name. */
  inputs: Record<string, string>;
}

export interface ResolvedConfig {
  name: string;
  backend: BackendRequest;
  seed?: number;
  /** In a topological order (every entry after its inputs). */
  entries: ResolvedEntry[];
  /** Present when the config's `sweep` section or `--grid` flags ask for a sweep (see @graft/sweep). */
  sweep?: ResolvedSweep;
}

/** One axis of a sweep's grid: the values one param takes, each checked against its stage's schema. */
export interface GridAxis {
  /** "entry.param" or "entry.param.field", as written. */
  key: string;
  entry: string;
  /** The param path below the entry's params: ["learningRate"]. */
  path: string[];
  values: unknown[];
}

export interface ResolvedSweep {
  /** Config axes first (in the config's order), then `--grid` axes; a `--grid` axis replaces the config's axis of the same key in place. */
  grid: GridAxis[];
  /** The config's `sweep.seeds`, if any (`--seeds` overrides it in @graft/sweep). */
  seeds?: number[];
}

/** A `--grid entry.param=[...]` axis already parsed (by @graft/sweep); `source` is the flag as typed, for messages. */
export interface GridOverride {
  source: string;
  key: string;
  values: unknown[];
}

/** A problem with its JSON path (or the flag, e.g. `--set`, that caused it). */
export type ConfigProblem = Problem;

export class ConfigError extends UsageError {
  readonly problems: ConfigProblem[];
  constructor(source: string, problems: ConfigProblem[]) {
    const lines = problems.map((p) => `  - ${p.path || '(root)'}: ${p.message}`);
    super(
      PIPELINE_ERROR_CODES.configInvalid,
      `${source} is not a valid pipeline config (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}\nFix these and run again; nothing was run.`,
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export type StageRegistry = ReadonlyMap<string, StageDefinition>;

export interface ConfigOverrides {
  /** `--set entry.param=value` pairs, already split into path and raw value. */
  set?: string[];
  /** `--seed N`: the seed of every entry that has a seed param. */
  seed?: number;
  /** `--backend`. */
  backend?: string;
  /** `--grid` axes: they extend the config's `sweep.grid`, replacing an axis of the same key. */
  grid?: GridOverride[];
}

/**
 * Reads a config file; an unreadable file, a device or pipe (`--config /dev/zero`), a file
 * over MAX_CONFIG_BYTES or invalid JSON is one UsageError line naming the file.
 */
export async function readConfigFile(path: string): Promise<unknown> {
  let bytes: Buffer;
  try {
    bytes = await readBoundedFile(path, MAX_CONFIG_BYTES);
  } catch (error) {
    const reason =
      error instanceof FileRefusedError
        ? error.code === 'FILE_TOO_LARGE'
          ? `${path} is larger than ${MAX_CONFIG_BYTES / 2 ** 20} MiB, too large for a pipeline config`
          : error.message
        : describeSystemError(error, path);
    throw new UsageError(PIPELINE_ERROR_CODES.configUnreadable, `Cannot read pipeline config: ${reason}. Pass a pipeline config file (JSON) with --config.`, { cause: error });
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    const reason = error instanceof SyntaxError ? (error as Error).message : 'not UTF-8 text';
    throw new UsageError(PIPELINE_ERROR_CODES.configNotJson, `${path} is not valid JSON (${reason}). Fix the syntax and run again.`, { cause: error });
  }
}

/**
 * Params problems with their JSON path, except those about a value that came from
 * `--set entry.param=value`: those name the flag, since the config file holds no such
 * value and the user must fix the command line, not the file.
 */
function blameOverrides(error: z.ZodError, entryName: string, assignments: readonly string[], prefix: string): ConfigProblem[] {
  const overridden = assignments.flatMap((assignment) => {
    const match = /^([^.=]+)\.([^=]+)=/s.exec(assignment);
    return match && match[1] === entryName ? [{ assignment, path: formatJsonPath(match[2]!.split('.')) }] : [];
  });
  return error.issues.flatMap((issue) => {
    // An unknown key is about that key's path, not the object holding it.
    const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((key) => formatJsonPath([...issue.path, key])) : [formatJsonPath(issue.path)];
    // The last --set of a path wins, as it does when applied.
    const culprit = overridden.findLast((o) => paths.some((path) => path === o.path || path.startsWith(`${o.path}.`) || path.startsWith(`${o.path}[`)));
    const [problem] = zodProblems({ issues: [issue] }, culprit ? '' : prefix);
    return culprit ? [{ path: `--set ${culprit.assignment}`, message: problem!.message }] : [problem!];
  });
}

/**
 * Keys a config may not use anywhere: `__proto__` vanishes (or replaces the prototype)
 * when JSON becomes objects, so it could never mean what it says. Also bounds the depth.
 * Iterative, so no input can overflow the stack.
 */
function forbiddenKeyProblems(raw: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const stack: Array<{ value: unknown; path: string; depth: number }> = [{ value: raw, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_CONFIG_DEPTH) {
      problems.push({ path, message: `nested more than ${MAX_CONFIG_DEPTH} levels deep; no pipeline config needs that` });
      continue;
    }
    if (Array.isArray(value)) {
      value.forEach((item, i) => stack.push({ value: item, path: `${path}[${i}]`, depth: depth + 1 }));
      continue;
    }
    for (const key of Object.keys(value)) {
      const at = path === '' ? key : `${path}.${key}`;
      if (key === '__proto__') problems.push({ path: at, message: '"__proto__" is not a valid key (JavaScript would silently drop it)' });
      else stack.push({ value: (value as Record<string, unknown>)[key], path: at, depth: depth + 1 });
    }
  }
  return problems;
}

/** The `seed` key of a stage's params schema, if it has one. */
function hasSeedParam(stage: StageDefinition): boolean {
  const shape = objectShape(stage.params);
  return shape !== undefined && Object.hasOwn(shape, 'seed');
}

/** The inner schema of the wrappers a param can carry: .default(), .optional(), .nullable(), a pipe's input. */
function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    const def = (current as unknown as { _zod: { def: { type: string; innerType?: z.ZodType; in?: z.ZodType } } })._zod.def;
    if (def.innerType !== undefined) current = def.innerType;
    else if (def.type === 'pipe' && def.in !== undefined) current = def.in;
    else return current;
  }
}

/** The shape of an object schema (through its wrappers), or undefined when it is not one. */
function objectShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  const inner = unwrap(schema);
  return inner instanceof z.ZodObject ? (inner.shape as Record<string, z.ZodType>) : undefined;
}

/** What kind of value a schema takes, for messages: "a list", "a number", ... */
function kindOf(schema: z.ZodType): string {
  const type = (unwrap(schema) as unknown as { _zod: { def: { type: string } } })._zod.def.type;
  const names: Record<string, string> = { array: 'a list', number: 'a number', int: 'an integer', boolean: 'true or false', string: 'a string', enum: 'one of a set of strings', literal: 'a fixed value' };
  return Object.hasOwn(names, type) ? names[type]! : `a ${type}`;
}

/**
 * Why `keys` (a `--set` path below the entry) names nothing in a stage's params schema,
 * or undefined when it names a param (or a field of an object param).
 */
function paramPathProblem(stage: StageDefinition, entryName: string, keys: readonly string[]): string | undefined {
  let schema: z.ZodType = stage.params;
  for (let i = 0; i < keys.length; i++) {
    const shape = objectShape(schema);
    const key = keys[i]!;
    const here = [entryName, ...keys.slice(0, i)].join('.');
    if (shape === undefined) {
      return `${here} is ${kindOf(schema)}, not an object, so "${keys.slice(0, i + 1).join('.')}" names nothing; set the whole value, e.g. --set ${here}=<JSON value>`;
    }
    if (!Object.hasOwn(shape, key)) {
      const known = Object.keys(shape);
      const what = i === 0 ? `stage ${stage.name} has no param "${key}"` : `${here} has no field "${key}"`;
      return `${what}; ${i === 0 ? 'its params' : 'fields'}: ${known.join(', ') || '(none)'}`;
    }
    schema = shape[key]!;
  }
  return undefined;
}

/** Parses `--set` values: JSON when it parses (numbers, booleans, arrays), else the raw string. */
export function parseOverrideValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Applies `--set entry.param[.field...]=value`. Every path must name an entry and a param
 * of its stage (checked against the stage's params schema, so a typo or a field of a list
 * is an error naming the flag, not an override silently ignored).
 */
function applyOverrides(entries: ReadonlyMap<string, WrittenEntry>, registry: StageRegistry, overrides: ConfigOverrides, problems: ConfigProblem[]): void {
  for (const assignment of overrides.set ?? []) {
    const path = `--set ${assignment}`;
    const match = /^([^.=]+)\.([^=]+)=(.*)$/s.exec(assignment);
    if (!match) {
      problems.push({ path, message: 'expected entry.param=value, e.g. --set phase-two.epochs=2' });
      continue;
    }
    const [, entryName, paramPath, rawValue] = match as unknown as [string, string, string, string];
    const entry = entries.get(entryName);
    if (!entry) {
      problems.push({ path, message: `no entry named "${entryName}"; entries: ${[...entries.keys()].join(', ')}` });
      continue;
    }
    const stage = registry.get(entry.stage);
    // An unknown stage is reported on its entry; there is no schema to check the path against.
    if (!stage) continue;
    const keys = paramPath.split('.');
    const problem = paramPathProblem(stage, entryName, keys);
    if (problem) {
      problems.push({ path, message: problem });
      continue;
    }
    entry.params ??= {};
    let target = entry.params as Record<string, unknown>;
    for (const key of keys.slice(0, -1)) {
      const next = Object.hasOwn(target, key) ? target[key] : undefined;
      if (typeof next !== 'object' || next === null || Array.isArray(next)) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[keys[keys.length - 1]!] = parseOverrideValue(rawValue);
  }
}

/**
 * Validates and resolves a config as written. Throws ConfigError with every problem.
 * `source` names the config in messages (usually its path).
 */
export function resolveConfig(raw: unknown, registry: StageRegistry, source: string, givenOverrides: ConfigOverrides = {}): ResolvedConfig {
  let overrides = givenOverrides;
  const problems: ConfigProblem[] = [];
  // Checked before anything copies or walks the config recursively (structuredClone below).
  const forbidden = forbiddenKeyProblems(raw);
  const shape = configSchema.safeParse(raw);
  if (!shape.success || forbidden.length > 0) throw new ConfigError(source, [...forbidden, ...(shape.success ? [] : zodProblems(shape.error))]);
  // structuredClone: overrides must not mutate the caller's object. A Map from here on:
  // entry names are looked up, and no name may find something an object inherits.
  const written = structuredClone(shape.data);
  const writtenEntries = new Map(Object.entries(written.entries));

  if (overrides.backend !== undefined && !isBackendRequest(overrides.backend)) {
    problems.push({ path: '--backend', message: `unknown backend "${overrides.backend}"; use one of ${BACKEND_REQUESTS.join(', ')}` });
  }
  const seedOverride = overrides.seed;
  if (seedOverride !== undefined && (!Number.isInteger(seedOverride) || seedOverride < 0 || seedOverride > MAX_SEED)) {
    problems.push({ path: '--seed', message: `seed must be an integer from 0 to ${MAX_SEED}, got ${seedOverride}` });
    // Reported once here, not again for every entry it would have reached.
    overrides = { ...overrides, seed: undefined };
  }
  applyOverrides(writtenEntries, registry, overrides, problems);
  const globalSeed = overrides.seed ?? written.seed;

  if (writtenEntries.size === 0) problems.push({ path: 'entries', message: 'a pipeline needs at least one entry' });

  const entries = new Map<string, ResolvedEntry>();
  for (const [name, entry] of writtenEntries) {
    const path = `entries.${name}`;
    const nameProblem = checkEntryName(name);
    if (nameProblem) problems.push({ path, message: nameProblem });
    const stage = registry.get(entry.stage);
    if (!stage) {
      problems.push({ path: `${path}.stage`, message: `unknown stage "${entry.stage}"; known stages: ${[...registry.keys()].join(', ')}` });
      continue;
    }
    const params: Record<string, unknown> = { ...(entry.params ?? {}) };
    if (hasSeedParam(stage)) {
      if (overrides.seed !== undefined) params.seed = overrides.seed;
      else if (params.seed === undefined && globalSeed !== undefined) params.seed = globalSeed;
    }
    const parsed = stage.params.safeParse(params);
    if (!parsed.success) problems.push(...blameOverrides(parsed.error, name, overrides.set ?? [], `${path}.params`));

    const inputs = entry.inputs ?? {};
    const slots = Object.keys(stage.inputs);
    const takes = slots.map((slot) => `${slot} (${stage.inputs[slot]})`).join(', ');
    for (const slot of slots) {
      if (!Object.hasOwn(inputs, slot)) problems.push({ path: `${path}.inputs`, message: `missing input "${slot}" (stage ${stage.name} takes: ${takes})` });
    }
    for (const [slot, upstream] of Object.entries(inputs)) {
      const upstreamStage = registry.get(writtenEntries.get(upstream)?.stage ?? '');
      const needed = Object.hasOwn(stage.inputs, slot) ? stage.inputs[slot] : undefined;
      if (needed === undefined) {
        problems.push({ path: `${path}.inputs.${slot}`, message: `stage ${stage.name} has no input "${slot}"${slots.length ? ` (it takes: ${takes})` : ' (it takes no inputs)'}` });
      } else if (!writtenEntries.has(upstream)) {
        problems.push({ path: `${path}.inputs.${slot}`, message: `refers to "${upstream}", which is not an entry of this pipeline` });
      } else if (upstream === name) {
        problems.push({ path: `${path}.inputs.${slot}`, message: 'an entry cannot consume its own output' });
      } else if (upstreamStage && !upstreamStage.output.includes(needed)) {
        // Artifact kinds are the contract between stages: caught here, before anything runs.
        problems.push({
          path: `${path}.inputs.${slot}`,
          message: `needs a ${needed} artifact, but "${upstream}" (stage ${upstreamStage.name}) produces ${upstreamStage.output.join(' + ')}; feed it an entry whose stage produces ${needed}`,
        });
      }
    }
    entries.set(name, {
      name,
      stage: entry.stage,
      ...(entry.description === undefined ? {} : { description: entry.description }),
      params: parsed.success ? (parsed.data as Record<string, unknown>) : params,
      inputs: { ...inputs },
    });
  }

  const order = topologicalOrder(entries, problems);
  const sweep = resolveSweep(written.sweep, overrides.grid ?? [], writtenEntries, registry, problems);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return {
    name: written.name ?? source.replace(/^.*\//, '').replace(/\.json$/, ''),
    backend: (overrides.backend ?? written.backend ?? 'auto') as BackendRequest,
    ...(globalSeed === undefined ? {} : { seed: globalSeed }),
    entries: order.map((name) => entries.get(name)!),
    ...(sweep ? { sweep } : {}),
  };
}

/**
 * The config's `sweep` section merged with the `--grid` axes, every axis checked: the key
 * names an entry and a param of its stage (not `seed`: seeds are their own axis), the list
 * is not empty, and every value is one the param's schema accepts (checked against the
 * entry's params as written, after --set, so a value fails only for its own sake).
 * Problems name `sweep.grid["entry.param"][i]` or the `--grid` flag.
 */
function resolveSweep(
  written: z.output<typeof sweepSchema> | undefined,
  flags: readonly GridOverride[],
  entries: ReadonlyMap<string, WrittenEntry>,
  registry: StageRegistry,
  problems: ConfigProblem[],
): ResolvedSweep | undefined {
  if (written === undefined && flags.length === 0) return undefined;
  const axes = new Map<string, GridAxis>();
  const check = (key: string, values: unknown[], where: (index?: number) => string): void => {
    const before = problems.length;
    const axis = gridAxis(key, values, where, entries, registry, problems);
    if (problems.length === before && axis) axes.set(key, axis);
    else axes.delete(key);
  };
  for (const [key, values] of Object.entries(written?.grid ?? {})) {
    check(key, values, (index) => `sweep.grid[${JSON.stringify(key)}]${index === undefined ? '' : `[${index}]`}`);
  }
  for (const flag of flags) check(flag.key, flag.values, (index) => (index === undefined ? flag.source : `${flag.source} (value ${index + 1})`));
  const grid = [...axes.values()];
  const runs = grid.reduce((n, axis) => n * axis.values.length, 1) * (written?.seeds?.length ?? 1);
  if (runs > MAX_SWEEP_RUNS) {
    problems.push({ path: 'sweep', message: `the grid and seeds make ${runs} runs, more than the ${MAX_SWEEP_RUNS} one sweep may plan; split it into several sweeps` });
  }
  return { grid, ...(written?.seeds ? { seeds: [...written.seeds] } : {}) };
}

function gridAxis(
  key: string,
  values: unknown[],
  where: (index?: number) => string,
  entries: ReadonlyMap<string, WrittenEntry>,
  registry: StageRegistry,
  problems: ConfigProblem[],
): GridAxis | undefined {
  const [entryName, ...path] = key.split('.');
  if (!entryName || path.length === 0 || path.some((segment) => segment === '')) {
    problems.push({ path: where(), message: `a grid axis is named entry.param (e.g. "phase-two.learningRate"), got ${JSON.stringify(key)}` });
    return undefined;
  }
  const entry = entries.get(entryName);
  if (!entry) {
    problems.push({ path: where(), message: `no entry named "${entryName}"; entries: ${[...entries.keys()].join(', ')}` });
    return undefined;
  }
  const stage = registry.get(entry.stage);
  // An unknown stage is reported on its entry; there is no schema to check the axis against.
  if (!stage) return undefined;
  const pathProblem = paramPathProblem(stage, entryName, path);
  if (pathProblem) {
    problems.push({ path: where(), message: pathProblem.replace('set the whole value, e.g. --set ', 'vary the whole value, e.g. --grid ').replace('=<JSON value>', '=[<JSON values>]') });
    return undefined;
  }
  if (path.length === 1 && path[0] === 'seed') {
    problems.push({ path: where(), message: 'seeds are an axis of their own: list them in sweep.seeds or pass --seeds 0,1,2 instead of a grid over the seed param' });
    return undefined;
  }
  if (values.length === 0) {
    problems.push({ path: where(), message: 'lists no values; a grid axis needs at least one (e.g. [1e-4, 3e-4])' });
    return undefined;
  }
  if (values.length > MAX_GRID_VALUES) {
    problems.push({ path: where(), message: `lists ${values.length} values, more than the ${MAX_GRID_VALUES} a grid axis may take` });
    return undefined;
  }
  const paramPath = formatJsonPath(path);
  const seen = new Map<string, number>();
  values.forEach((value, index) => {
    const canonical = canonicalJson(value);
    if (seen.has(canonical)) {
      problems.push({ path: where(index), message: `repeats ${canonical} (value ${seen.get(canonical)! + 1}); list each value once` });
      return;
    }
    seen.set(canonical, index);
    const params = structuredClone(entry.params ?? {}) as Record<string, unknown>;
    let target = params;
    for (const segment of path.slice(0, -1)) {
      const next = Object.hasOwn(target, segment) ? target[segment] : undefined;
      if (typeof next !== 'object' || next === null || Array.isArray(next)) target[segment] = {};
      target = target[segment] as Record<string, unknown>;
    }
    target[path[path.length - 1]!] = value;
    const parsed = stage.params.safeParse(params);
    if (parsed.success) return;
    // Only the issues about this param: the entry's other params are reported on the entry itself.
    for (const issue of parsed.error.issues) {
      const at = formatJsonPath(issue.path);
      if (at === paramPath || at.startsWith(`${paramPath}.`) || at.startsWith(`${paramPath}[`)) {
        problems.push({ path: where(index), message: `${JSON.stringify(value)} is not a valid ${key}: ${issue.message}` });
      }
    }
  });
  return { key, entry: entryName, path, values: [...values] };
}

/** Kahn's algorithm in config order; reports every cycle member once. */
function topologicalOrder(entries: Map<string, ResolvedEntry>, problems: ConfigProblem[]): string[] {
  const upstreamOf = (name: string) => Object.values(entries.get(name)!.inputs).filter((up) => entries.has(up) && up !== name);
  const done = new Set<string>();
  const order: string[] = [];
  let progressed = true;
  while (progressed) {
    progressed = false;
    for (const name of entries.keys()) {
      if (done.has(name)) continue;
      if (upstreamOf(name).every((up) => done.has(up))) {
        done.add(name);
        order.push(name);
        progressed = true;
      }
    }
  }
  const stuck = [...entries.keys()].filter((name) => !done.has(name));
  // Entries downstream of a cycle are stuck too; report only those on a cycle.
  const onCycle = stuck.filter((name) => reaches(name, name, upstreamOf));
  for (const name of onCycle) {
    problems.push({ path: `entries.${name}.inputs`, message: `is part of a cycle (${onCycle.join(' -> ')}); inputs must form a DAG` });
  }
  return order;
}

function reaches(from: string, target: string, upstreamOf: (name: string) => string[]): boolean {
  const seen = new Set<string>();
  const stack = [...upstreamOf(from)];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (next === target) return true;
    if (seen.has(next)) continue;
    seen.add(next);
    stack.push(...upstreamOf(next));
  }
  return false;
}

/** The entries needed to build `target` ('all' or an entry name), in execution order. */
export function entriesFor(config: ResolvedConfig, target: string): ResolvedEntry[] {
  if (target === 'all') return config.entries;
  const byName = new Map(config.entries.map((e) => [e.name, e]));
  if (!byName.has(target)) {
    throw new UsageError(PIPELINE_ERROR_CODES.unknownTarget, `"${target}" is not an entry of pipeline ${config.name}; use "all" or one of: ${config.entries.map((e) => e.name).join(', ')}`);
  }
  const needed = new Set<string>();
  const visit = (name: string) => {
    if (needed.has(name)) return;
    needed.add(name);
    for (const up of Object.values(byName.get(name)!.inputs)) visit(up);
  };
  visit(target);
  return config.entries.filter((e) => needed.has(e.name));
}

/**
 * JSON Schema of pipeline configs, with each stage's params spelled out, so editors
 * complete and check `pipelines/*.json` through their `$schema` reference.
 */
export function pipelineJsonSchema(registry: StageRegistry): Record<string, unknown> {
  const stageEntries = [...registry.values()].map((stage) =>
    entrySchema.extend({
      stage: z.literal(stage.name).describe(stage.description),
      params: (stage.params as unknown as z.ZodObject).optional(),
    }),
  );
  const schema = configSchema.extend({
    entries: z.record(z.string().regex(ENTRY_NAME).max(ENTRY_NAME_MAX), stageEntries.length > 0 ? z.union(stageEntries as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]]) : entrySchema),
  });
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
