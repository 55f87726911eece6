import { resolve } from 'node:path';

export const DEFAULT_CONFIG = 'pipelines/mnist-transfer.json';

/** Options every command takes (added in main.ts). */
export interface GlobalOptions {
  artifacts: string | undefined;
  verbose: boolean;
}

export function resolveConfigPath(path: string | undefined): string {
  return resolve(path ?? DEFAULT_CONFIG);
}

/** A repeated single-valued flag takes its last value: Nx appends forwarded args after a target's own. */
export function lastValue<T>(value: T | T[]): T {
  return Array.isArray(value) ? (value[value.length - 1] as T) : value;
}
