import { GraftError, type ErrorCodeOf } from './errors.ts';

export const CANONICAL_JSON_ERROR_CODES = {
  /** A value that is not plain JSON (undefined, NaN, a Date, a cycle ...) reached a key or digest. */
  notCanonicalJson: 'NOT_CANONICAL_JSON',
} as const;
export type CanonicalJsonErrorCode = ErrorCodeOf<typeof CANONICAL_JSON_ERROR_CODES>;

/**
 * JSON with object keys sorted (by UTF-16 code units, as RFC 8785 does) and no
 * whitespace, so equal values always give equal bytes and therefore equal keys.
 *
 * JSON.stringify silently drops `undefined` properties, turns NaN into null and calls
 * `toJSON`: each of those would let two different params hash alike (or one param
 * hash differently across versions), so anything that is not plain JSON is rejected,
 * naming where it sits.
 *
 * The one canonical JSON of graft: artifact keys, manifest digests and `graft compare`'s
 * equality of params all use it. Its bytes for a given value must never change
 * (canonical-json.golden.json pins them), or every existing store's keys would.
 */
export function canonicalJson(value: unknown): string {
  return write(value, '$', new Set());
}

function write(value: unknown, path: string, ancestors: Set<object>): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw notJson(path, `${value} (only finite numbers are JSON)`);
      // -0 and 0 are the same JSON number; JSON.stringify already writes both as 0.
      return JSON.stringify(value);
    case 'undefined':
      throw notJson(path, 'undefined (omit the property or use null)');
    case 'bigint':
      throw notJson(path, `a bigint (${value}n); use a number or a string`);
    case 'function':
      throw notJson(path, 'a function');
    case 'symbol':
      throw notJson(path, 'a symbol');
    case 'object':
      break;
  }
  if (value === null) return 'null';
  const object = value as object;
  if (ancestors.has(object)) throw notJson(path, 'a circular reference');
  ancestors.add(object);
  try {
    if (Array.isArray(object)) {
      const parts: string[] = [];
      // A for loop, not map(): map skips holes, and a hole is an undefined we must reject.
      for (let i = 0; i < object.length; i++) parts.push(write(object[i], `${path}[${i}]`, ancestors));
      return `[${parts.join(',')}]`;
    }
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      throw notJson(path, `a ${kind} (only plain objects, arrays, strings, finite numbers, booleans and null)`);
    }
    if (Object.getOwnPropertySymbols(object).length > 0) throw notJson(path, 'an object with symbol keys');
    const keys = Object.keys(object).sort();
    const parts = keys.map((key) => `${JSON.stringify(key)}:${write((object as Record<string, unknown>)[key], `${path}.${key}`, ancestors)}`);
    return `{${parts.join(',')}}`;
  } finally {
    ancestors.delete(object);
  }
}

function notJson(path: string, what: string): GraftError {
  return new GraftError(CANONICAL_JSON_ERROR_CODES.notCanonicalJson, `Cannot hash ${path}: it is ${what}. Artifact keys are computed from plain JSON values only.`);
}
