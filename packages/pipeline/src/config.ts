import { readFile } from 'node:fs/promises';
import { BACKEND_REQUESTS, UsageError, describeSystemError, isBackendRequest, formatJsonPath, zodProblems, type BackendRequest, type Problem, type StageDefinition } from '@graft/core';
import { z } from 'zod';

/**
 * A pipeline config as written (all optional but `entries`) -> `resolveConfig()` ->
 * a ResolvedConfig with every default filled in. Validation collects *every* problem
 * (shape, unknown stages, params, inputs, dangling references, cycles) and throws one
 * ConfigError listing them with their JSON paths, so a user fixes a config in one pass.
 */


const ENTRY_NAME = /^[a-z][a-z0-9-]*$/;

const entrySchema = z.strictObject({
  stage: z.string().describe('Stage package this entry runs: ingest, split, phase-one, transplant, phase-two'),
  description: z.string().optional(),
  params: z.record(z.string(), z.unknown()).optional().describe("The stage's params; omitted ones take the stage's defaults"),
  inputs: z
    .record(z.string(), z.string())
    .optional()
    .describe("Input slot -> name of the entry whose artifact feeds it, e.g. { \"data\": \"split\" }"),
});

const configSchema = z.strictObject({
  $schema: z.string().optional(),
  name: z.string().optional(),
  description: z.string().optional(),
  backend: z.enum(BACKEND_REQUESTS).optional().describe('Compute backend for training stages (default auto)'),
  seed: z.number().int().min(0).optional().describe('Seed for every entry that has a seed param, unless the entry sets its own'),
  entries: z.record(z.string(), entrySchema),
});

export type WrittenConfig = z.input<typeof configSchema>;

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
}

/** A problem with its JSON path (or the flag, e.g. `--set`, that caused it). */
export type ConfigProblem = Problem;

export class ConfigError extends UsageError {
  readonly problems: ConfigProblem[];
  constructor(source: string, problems: ConfigProblem[]) {
    const lines = problems.map((p) => `  - ${p.path || '(root)'}: ${p.message}`);
    super(
      'CONFIG_INVALID',
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
}

/** Reads a config file; an unreadable file or invalid JSON is a UsageError naming the file. */
export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError('CONFIG_UNREADABLE', `Cannot read pipeline config: ${describeSystemError(error, path)}. Pass an existing file with --config.`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError('CONFIG_NOT_JSON', `${path} is not valid JSON (${(error as Error).message}). Fix the syntax and run again.`, { cause: error });
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

/** The `seed` key of a stage's params schema, if it has one. */
function hasSeedParam(stage: StageDefinition): boolean {
  const shape = (stage.params as unknown as { shape?: Record<string, unknown> }).shape;
  return shape !== undefined && 'seed' in shape;
}

/** Parses `--set` values: JSON when it parses (numbers, booleans, arrays), else the raw string. */
export function parseOverrideValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function applyOverrides(written: z.output<typeof configSchema>, overrides: ConfigOverrides, problems: ConfigProblem[]): void {
  for (const assignment of overrides.set ?? []) {
    const match = /^([^.=]+)\.([^=]+)=(.*)$/s.exec(assignment);
    if (!match) {
      problems.push({ path: `--set ${assignment}`, message: 'expected entry.param=value, e.g. --set phase-two.epochs=2' });
      continue;
    }
    const [, entryName, paramPath, rawValue] = match as unknown as [string, string, string, string];
    const entry = written.entries[entryName];
    if (!entry) {
      problems.push({ path: `--set ${assignment}`, message: `no entry named "${entryName}"; entries: ${Object.keys(written.entries).join(', ')}` });
      continue;
    }
    entry.params ??= {};
    const keys = paramPath.split('.');
    let target = entry.params as Record<string, unknown>;
    for (const key of keys.slice(0, -1)) {
      if (typeof target[key] !== 'object' || target[key] === null) target[key] = {};
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
  const shape = configSchema.safeParse(raw);
  if (!shape.success) throw new ConfigError(source, zodProblems(shape.error));
  // structuredClone: overrides must not mutate the caller's object.
  const written = structuredClone(shape.data);

  if (overrides.backend !== undefined && !isBackendRequest(overrides.backend)) {
    problems.push({ path: '--backend', message: `unknown backend "${overrides.backend}"; use one of ${BACKEND_REQUESTS.join(', ')}` });
  }
  const seedOverride = overrides.seed;
  if (seedOverride !== undefined && (!Number.isInteger(seedOverride) || seedOverride < 0)) {
    problems.push({ path: '--seed', message: `seed must be a non-negative integer, got ${seedOverride}` });
    // Reported once here, not again for every entry it would have reached.
    overrides = { ...overrides, seed: undefined };
  }
  applyOverrides(written, overrides, problems);
  const globalSeed = overrides.seed ?? written.seed;

  const names = Object.keys(written.entries);
  if (names.length === 0) problems.push({ path: 'entries', message: 'a pipeline needs at least one entry' });

  const entries = new Map<string, ResolvedEntry>();
  for (const name of names) {
    const entry = written.entries[name]!;
    const path = `entries.${name}`;
    if (!ENTRY_NAME.test(name) || name === 'all') {
      problems.push({ path, message: 'entry names are lower-case words joined by "-" (and not "all"), e.g. "phase-two" or "full-finetune"' });
    }
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
    for (const slot of stage.inputs) {
      if (inputs[slot] === undefined) problems.push({ path: `${path}.inputs`, message: `missing input "${slot}" (stage ${stage.name} takes: ${stage.inputs.join(', ')})` });
    }
    for (const [slot, upstream] of Object.entries(inputs)) {
      if (!stage.inputs.includes(slot)) {
        problems.push({ path: `${path}.inputs.${slot}`, message: `stage ${stage.name} has no input "${slot}"${stage.inputs.length ? ` (it takes: ${stage.inputs.join(', ')})` : ' (it takes no inputs)'}` });
      } else if (!(upstream in written.entries)) {
        problems.push({ path: `${path}.inputs.${slot}`, message: `refers to "${upstream}", which is not an entry of this pipeline` });
      } else if (upstream === name) {
        problems.push({ path: `${path}.inputs.${slot}`, message: 'an entry cannot consume its own output' });
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
  if (problems.length > 0) throw new ConfigError(source, problems);
  return {
    name: written.name ?? source.replace(/^.*\//, '').replace(/\.json$/, ''),
    backend: (overrides.backend ?? written.backend ?? 'auto') as BackendRequest,
    ...(globalSeed === undefined ? {} : { seed: globalSeed }),
    entries: order.map((name) => entries.get(name)!),
  };
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
    throw new UsageError('UNKNOWN_TARGET', `"${target}" is not an entry of pipeline ${config.name}; use "all" or one of: ${config.entries.map((e) => e.name).join(', ')}`);
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
    entries: z.record(z.string(), stageEntries.length > 0 ? z.union(stageEntries as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]]) : entrySchema),
  });
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
