import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from './main.ts';

const CONFIG = resolve(dirname(fileURLToPath(import.meta.url)), '../../../pipelines/mnist-transfer.json');

let store: string;
let stderr: string;
beforeEach(async () => {
  store = await mkdtemp(join(tmpdir(), 'graft-main-'));
  stderr = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(store, { recursive: true, force: true });
});

describe('graft error reporting (in process)', () => {
  it('prints [CODE] message and exits 2 for a user-fixable error', async () => {
    expect(await main(['compare', 'latest', '--artifacts', store])).toBe(2);
    expect(stderr).toMatch(/^graft: \[RUN_NOT_FOUND\] No runs recorded in /);
  });

  it('reports a bad --set value as the flag, exit 2, running nothing', async () => {
    expect(await main(['run', 'phase-two', '--config', CONFIG, '--set', 'phase-two.epochs=abc', '--artifacts', store])).toBe(2);
    expect(stderr).toMatch(/^graft: \[CONFIG_INVALID\] /);
    expect(stderr).toContain('--set phase-two.epochs=abc: ');
    expect(stderr).not.toContain('entries.phase-two.params.epochs');
  });

  it('prints the code of a yargs usage error too', async () => {
    expect(await main(['run', 'all', '--no-such-flag', '--artifacts', store])).toBe(2);
    expect(stderr).toMatch(/^graft: \[BAD_ARGUMENTS\] /);
  });
});
