import { UsageError } from '@graft/core';
import { parseOverrideValue, type GridOverride } from '@graft/pipeline';
import { SWEEP_ERROR_CODES } from './error-codes.ts';

/**
 * `--grid entry.param=[v1,v2,...]` -> one grid axis. The values are a JSON list, as `--set`
 * values are JSON (`[1e-4,3e-4]`, `[[9],[8]]`, `[true,false]`); a list of bare words
 * (`[phase-one,phase-two]`) is read as strings, as `--set` reads a bare word. Whether the
 * entry, the param and each value exist and fit is the config's check (resolveConfig),
 * which names this flag.
 */
export function parseGridFlag(text: string): GridOverride {
  const source = `--grid ${text}`;
  const match = /^([^=\s]+)=(.*)$/s.exec(text.trim());
  const bad = (why: string) =>
    new UsageError(SWEEP_ERROR_CODES.badGrid, `${source}: ${why}. Write entry.param=[v1,v2,...] with JSON values, e.g. --grid phase-two.learningRate=[1e-4,3e-4].`);
  if (!match) throw bad('no "=" between the param and its values');
  const [, key, rawValues] = match as unknown as [string, string, string];
  if (!key.includes('.')) throw bad(`"${key}" names no param; name it entry.param`);
  const trimmed = rawValues.trim();
  let values: unknown;
  try {
    values = JSON.parse(trimmed);
  } catch {
    // Bare words, as --set takes them: [phase-one,phase-two]. Nested lists or quotes must be JSON.
    if (/^\[[^[\]"]*\]$/s.test(trimmed)) {
      const inner = trimmed.slice(1, -1).trim();
      values = inner === '' ? [] : inner.split(',').map((part) => parseOverrideValue(part.trim()));
    } else {
      throw bad(`${JSON.stringify(rawValues)} is not a JSON list`);
    }
  }
  if (!Array.isArray(values)) throw bad(`${JSON.stringify(rawValues)} is one value, not a list; use [${rawValues}] for a single value`);
  return { source, key, values };
}

/** `--jobs N`: a whole number from 1 up (1 = one build at a time, in this process). */
export function parseJobs(value: unknown): number {
  const text = String(value).trim();
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(SWEEP_ERROR_CODES.badJobs, `--jobs takes a whole number of parallel builds from 1 up (default: the number of cores), got ${JSON.stringify(value)}.`);
  }
  return Number(text);
}
