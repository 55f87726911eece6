import { spawnSync } from 'node:child_process';
import { mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { tempDir } from './__fixtures__/helpers.ts';
import { KeyLock, readLock } from './lock.ts';

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await tempDir();
  const created = dir;
  onTestFinished(() => rm(created, { recursive: true, force: true }));
  file = join(dir, 'locks', 'stage', 'key.lock');
});

const options = { timeoutMs: 300, staleMs: 60_000, label: 'artifact s/k' };

function deadPid(): number {
  // A child that has exited and been reaped: its pid is (for a while) not in use.
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
}

async function plant(holder: Record<string, unknown> | string, ageMs = 0): Promise<void> {
  await mkdir(join(dir, 'locks', 'stage'), { recursive: true });
  await writeFile(file, typeof holder === 'string' ? holder : JSON.stringify({ hostname: hostname(), token: 'theirs', createdAt: new Date().toISOString(), ...holder }));
  if (ageMs !== 0) {
    const then = new Date(Date.now() - ageMs);
    await utimes(file, then, then);
  }
}

describe('KeyLock', () => {
  it('writes pid, host and outDir into the lock and removes it on release (idempotent)', async () => {
    const lock = await KeyLock.acquire(file, 'out.1', options);
    const state = await readLock(file);
    expect(state?.holder).toMatchObject({ pid: process.pid, hostname: hostname(), outDir: 'out.1' });
    await lock.release();
    await lock.release();
    expect(await readLock(file)).toBeUndefined();
  });

  it('makes a second acquirer wait until the first releases', async () => {
    const first = await KeyLock.acquire(file, undefined, options);
    const onWait = vi.fn();
    const second = KeyLock.acquire(file, undefined, { ...options, timeoutMs: 5_000, onWait });
    await new Promise((r) => setTimeout(r, 100));
    expect(onWait).toHaveBeenCalledTimes(1);
    expect(onWait.mock.calls[0]![0]).toMatchObject({ holder: { pid: process.pid }, staleMs: options.staleMs });
    await first.release();
    const lock = await second;
    expect((await readLock(file))?.holder?.token).toBe(lock.holder.token);
    await lock.release();
  });

  it('gives up on a live holder after the timeout, naming it', async () => {
    await plant({ pid: process.ppid });
    const started = Date.now();
    await expect(KeyLock.acquire(file, undefined, options)).rejects.toMatchObject({
      code: 'ARTIFACT_LOCKED',
      message: expect.stringContaining(`process ${process.ppid} on ${hostname()}`),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(JSON.parse(await readFile(file, 'utf8')).token).toBe('theirs');
  });

  it('breaks the lock of a dead process at once', async () => {
    const pid = deadPid();
    expect(pid).toBeGreaterThan(0);
    await plant({ pid });
    const lock = await KeyLock.acquire(file, undefined, { ...options, timeoutMs: 0 });
    expect((await readLock(file))?.holder?.pid).toBe(process.pid);
    await lock.release();
  });

  it('breaks a lock whose heartbeat is older than staleMs even if the pid looks alive', async () => {
    await plant({ pid: process.ppid }, 5_000);
    const lock = await KeyLock.acquire(file, undefined, { ...options, staleMs: 1_000 });
    await lock.release();
  });

  it('trusts only the heartbeat for a holder on another host', async () => {
    await plant({ pid: 999_999_999, hostname: 'elsewhere' });
    await expect(KeyLock.acquire(file, undefined, options)).rejects.toMatchObject({ code: 'ARTIFACT_LOCKED' });
    await plant({ pid: 999_999_999, hostname: 'elsewhere' }, 120_000);
    await (await KeyLock.acquire(file, undefined, options)).release();
  });

  it('breaks a lock stamped further in the future than staleMs (a clock that cannot be trusted)', async () => {
    await plant({ pid: 999_999_999, hostname: 'elsewhere' }, -3_600_000);
    await (await KeyLock.acquire(file, undefined, { ...options, timeoutMs: 0 })).release();
    // The same goes for a breaker's guard file from such a clock: it must not block breaking forever.
    await plant({ pid: 999_999_999, hostname: 'elsewhere' }, -3_600_000);
    await writeFile(`${file}.break`, '{}');
    const future = new Date(Date.now() + 3_600_000);
    await utimes(`${file}.break`, future, future);
    await (await KeyLock.acquire(file, undefined, { ...options, timeoutMs: 1_000 })).release();
  });

  it('takes over a lock whose heartbeat it has watched stand still for staleMs, whatever its timestamp says', async () => {
    // Another host, stamped slightly in the future (within tolerance), never refreshed.
    // By its timestamp alone it would look fresh for staleMs + 1.9 s; watched, it is stale after staleMs.
    await plant({ pid: 999_999_999, hostname: 'elsewhere' }, -1_900);
    const started = Date.now();
    const onWait = vi.fn();
    await (await KeyLock.acquire(file, undefined, { ...options, staleMs: 2_000, timeoutMs: 10_000, onWait })).release();
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(Date.now() - started).toBeLessThan(3_500);
    expect(onWait.mock.calls[0]![0]).toMatchObject({ holder: { hostname: 'elsewhere' }, staleMs: 2_000 });
    expect(onWait.mock.calls[0]![0].heartbeatAgeMs).toBeLessThan(0);
  });

  it('breaks a lock with our own pid that this process does not hold (a previous incarnation)', async () => {
    await plant({ pid: process.pid, token: 'old-incarnation' });
    await (await KeyLock.acquire(file, undefined, options)).release();
  });

  it('waits on a fresh half-written lock but breaks an old one', async () => {
    await plant('');
    await expect(KeyLock.acquire(file, undefined, options)).rejects.toMatchObject({ code: 'ARTIFACT_LOCKED' });
    await plant('{"pid":', 60_000);
    await (await KeyLock.acquire(file, undefined, options)).release();
  });

  it('does not delete a lock that is no longer its own on release', async () => {
    const lock = await KeyLock.acquire(file, undefined, options);
    await plant({ pid: process.ppid, token: 'someone-else' });
    await lock.release();
    expect(JSON.parse(await readFile(file, 'utf8')).token).toBe('someone-else');
  });

  it('keeps refreshing its mtime while held', async () => {
    const lock = await KeyLock.acquire(file, undefined, { ...options, staleMs: 100 });
    const old = new Date(Date.now() - 60_000);
    await utimes(file, old, old);
    await new Promise((r) => setTimeout(r, 120));
    expect(Date.now() - (await stat(file)).mtimeMs).toBeLessThan(1_000);
    await lock.release();
  });
});
