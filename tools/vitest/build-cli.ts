/**
 * Global setup of the e2e tier: bring the graft CLI bundle up to date once, before any
 * test starts the binary. (The binary would rebuild a stale bundle itself, but then every
 * test process that starts at the same moment would build it concurrently.)
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function buildCli(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL('../../packages/cli/build.mjs', import.meta.url)), '--if-stale'], { stdio: 'inherit' });
}
