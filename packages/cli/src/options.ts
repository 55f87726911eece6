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
