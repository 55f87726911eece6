import { resolve } from 'node:path';

/** Default store directory name, relative to the working directory. */
export const DEFAULT_STORE_DIR = 'artifacts';

/**
 * Where the store lives: `--artifacts DIR` beats `$GRAFT_ARTIFACTS` beats
 * `<cwd>/artifacts`. Always absolute, so paths written into run records and logs
 * still mean something after a `cd`. Empty strings count as unset (an exported but
 * empty variable is a common shell accident).
 */
export function resolveStoreRoot(cliValue?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (cliValue !== undefined && cliValue.trim() !== '') return resolve(cliValue);
  const fromEnv = env['GRAFT_ARTIFACTS'];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return resolve(fromEnv);
  return resolve(DEFAULT_STORE_DIR);
}
