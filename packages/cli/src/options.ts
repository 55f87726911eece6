import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError, describeFileType, errnoCode } from '@graft/core';
import { CLI_ERROR_CODES } from './error-codes.ts';

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

/**
 * The store directory a command works on: `--artifacts DIR`, else $GRAFT_ARTIFACTS, else
 * ./artifacts. A path that exists but is not a directory (or lies under a file) is refused
 * here, exit 2, naming where the path came from: every command then sees a directory or
 * nothing, never a raw EEXIST/ENOTDIR from deep inside the store.
 */
export async function storeRoot(argv: { artifacts: string | undefined }, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  // @graft/artifacts (and zod) load when a command needs the store, not for --help.
  const { resolveStoreRoot } = await import('@graft/artifacts');
  const root = resolveStoreRoot(argv.artifacts, env);
  const from =
    argv.artifacts !== undefined && argv.artifacts.trim() !== ''
      ? '--artifacts'
      : (env['GRAFT_ARTIFACTS'] ?? '').trim() !== ''
        ? 'GRAFT_ARTIFACTS'
        : 'the default store ./artifacts';
  const refuse = (what: string) =>
    new UsageError(
      CLI_ERROR_CODES.storeNotDirectory,
      `The artifact store ${root} (${from}) ${what}. Pass a directory with --artifacts DIR (or GRAFT_ARTIFACTS); one that does not exist yet is created.`,
    );
  try {
    const info = statSync(root);
    if (!info.isDirectory()) throw refuse(`is ${describeFileType(info)}, not a directory`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    if (errnoCode(error) === 'ENOTDIR') throw refuse('lies under something that is not a directory');
    // Absent (created by the commands that write) or unreadable (reported by the store in its own words).
  }
  return root;
}
