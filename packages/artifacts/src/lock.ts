import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readFile, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { GraftError } from '@graft/core';
import { errnoCode, pidAlive, sleep, storeIoError } from './fs-util.ts';
import { ARTIFACT_ERROR_CODES } from './error-codes.ts';

/*
 * Why a hand-rolled lock file instead of proper-lockfile (which is installed):
 * - proper-lockfile only knows mtime staleness, so after a crash (Ctrl-C, OOM kill)
 *   every other run waits out the whole stale period. Recording pid + hostname lets a
 *   waiter on the same machine see at once that the owner is dead.
 * - Its default onCompromised handler throws from a timer, killing the process, when a
 *   heartbeat is late; training with a synchronous backend can block the event loop
 *   for many seconds per step. Here a late heartbeat only risks a duplicate build,
 *   which publish tolerates: the final rename is atomic and the loser's copy is dropped.
 * The lock is therefore an optimisation against duplicate work and racing discards,
 * not what keeps artifacts intact; atomic rename does that.
 *
 * Protocol: the lock is `<file>` created with O_EXCL ('wx') holding JSON
 * {pid, hostname, token, createdAt, outDir}; the owner refreshes its mtime every
 * heartbeat. It is stale when its owner is a dead pid on this host, or when its heartbeat
 * is older than `staleMs` by the local clock (owner on another host, or a recycled pid),
 * or stamped more than `staleMs` in the future (a clock we cannot trust), or when a
 * waiter has watched it for `staleMs` without seeing the heartbeat move (whatever the
 * timestamps say: this is what ends a foreign host's lock with a skewed clock). Removing a lock
 * (breaking or releasing) happens under a short-lived guard file `<file>.break`, and
 * only if the content is still exactly what was judged stale (or is still ours), so two
 * waiters cannot both break a lock and then delete each other's fresh one.
 */

export interface LockHolder {
  pid: number;
  hostname: string;
  token: string;
  createdAt: string;
  /** Basename of the temp dir this lock owns inside <root>/.tmp (lets gc keep it). */
  outDir?: string;
}

export interface LockState {
  /** Undefined when the file is not (yet) valid JSON, e.g. caught mid-write. */
  holder?: LockHolder;
  raw: string;
  mtimeMs: number;
}

/** What a waiter knows about the lock it waits for (for the "waiting for ..." lines). */
export interface LockWait {
  holder: LockHolder | undefined;
  /** How long this process has been waiting. */
  waitedMs: number;
  /** Local time minus the lock's last heartbeat (negative: stamped in the future). */
  heartbeatAgeMs: number;
  /** When a lock without a heartbeat counts as stale. */
  staleMs: number;
}

export interface LockOptions {
  /** Give up waiting for a live holder after this long. */
  timeoutMs: number;
  /** A lock whose heartbeat is older than this is stale even if its pid looks alive. */
  staleMs: number;
  /** Called when we start waiting for a live holder, then every `waitReportMs` (for log lines). */
  onWait?: (wait: LockWait) => void;
  /** Default 30 s. */
  waitReportMs?: number;
  /** Human label for messages, e.g. "phase-one/3f2a…". */
  label: string;
}

/** A lock file caught between create and write gets this long before it counts as abandoned. */
const HALF_WRITTEN_GRACE_MS = 10_000;
/** A breaker holds the guard for a few milliseconds; one older than this died holding it. */
const GUARD_STALE_MS = 10_000;
const HOST = hostname();

/** Tokens of locks this process holds: a lock with our pid but another token is a previous incarnation's. */
const heldTokens = new Set<string>();

export async function readLock(file: string): Promise<LockState | undefined> {
  let raw: string;
  let mtimeMs: number;
  try {
    // Never through a link: a lock file is always a plain file graft wrote.
    const handle = await open(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    try {
      raw = await handle.readFile('utf8');
      mtimeMs = (await handle.stat()).mtimeMs;
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  return { raw, mtimeMs, ...(parseHolder(raw) ? { holder: parseHolder(raw)! } : {}) };
}

function parseHolder(raw: string): LockHolder | undefined {
  try {
    const value = JSON.parse(raw) as Partial<LockHolder> | null;
    if (value && typeof value.pid === 'number' && typeof value.hostname === 'string' && typeof value.token === 'string') {
      return value as LockHolder;
    }
  } catch {
    // Half-written or foreign content: judged by mtime alone.
  }
  return undefined;
}

export function isStale(state: LockState, staleMs: number, now = Date.now()): boolean {
  const age = now - state.mtimeMs;
  const { holder } = state;
  // A heartbeat from further in the future than a stale period is a broken clock, not a live owner.
  if (-age > staleMs) return true;
  if (!holder) return Math.abs(age) > HALF_WRITTEN_GRACE_MS;
  if (holder.hostname === HOST) {
    if (holder.pid === process.pid) return !heldTokens.has(holder.token);
    if (!pidAlive(holder.pid)) return true;
  }
  return age > staleMs;
}

/** Whether `state` belongs to a holder that is still alive and fresh. */
export function isLive(state: LockState, staleMs: number, now = Date.now()): boolean {
  return !isStale(state, staleMs, now);
}

/** Runs `fn` while holding `<file>.break`; false if someone else holds the guard right now. */
async function underGuard(file: string, fn: () => Promise<void>): Promise<boolean> {
  const guard = `${file}.break`;
  try {
    await writeFile(guard, JSON.stringify({ pid: process.pid, hostname: HOST }), { flag: 'wx' });
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw error;
    try {
      const info = await lstat(guard);
      // abs: a guard stamped in the future (skewed clock) must not block breakers forever.
      if (Math.abs(Date.now() - info.mtimeMs) > GUARD_STALE_MS) await unlink(guard);
    } catch (statError) {
      if (errnoCode(statError) !== 'ENOENT') throw statError;
    }
    return false;
  }
  try {
    await fn();
  } finally {
    await unlink(guard).catch(() => undefined);
  }
  return true;
}

async function unlinkIfUnchanged(file: string, raw: string): Promise<void> {
  let current: string;
  try {
    current = await readFile(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  if (current === raw) await unlink(file).catch((error) => (errnoCode(error) === 'ENOENT' ? undefined : Promise.reject(error)));
}

/**
 * Removes a lock judged stale, but only if it still holds exactly `raw` (the content that
 * was judged). False if another process is breaking or releasing it right now.
 */
export async function breakLock(file: string, raw: string): Promise<boolean> {
  return underGuard(file, () => unlinkIfUnchanged(file, raw));
}

export class KeyLock {
  private released = false;

  private constructor(
    readonly file: string,
    readonly holder: LockHolder,
    private readonly raw: string,
    private readonly heartbeat: NodeJS.Timeout,
  ) {}

  /** Takes the lock, waiting for a live holder up to `timeoutMs` and breaking stale ones. */
  static async acquire(file: string, outDir: string | undefined, options: LockOptions): Promise<KeyLock> {
    const token = randomBytes(8).toString('hex');
    const holder: LockHolder = { pid: process.pid, hostname: HOST, token, createdAt: new Date().toISOString(), ...(outDir ? { outDir } : {}) };
    const raw = JSON.stringify(holder);
    try {
      await mkdir(dirname(file), { recursive: true });
    } catch (error) {
      throw storeIoError(error, dirname(file), `create the lock directory for ${options.label}`);
    }
    const started = Date.now();
    let pollMs = 20;
    let nextReport = 0;
    // The heartbeat as we last saw it and when (local clock) we saw it change.
    let watched: { raw: string; mtimeMs: number; since: number } | undefined;
    for (;;) {
      try {
        await writeFile(file, raw, { flag: 'wx' });
        heldTokens.add(token);
        const beat = Math.max(20, Math.min(30_000, Math.floor(options.staleMs / 4)));
        const heartbeat = setInterval(() => {
          const now = new Date();
          utimes(file, now, now).catch(() => undefined);
        }, beat);
        heartbeat.unref();
        return new KeyLock(file, holder, raw, heartbeat);
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw storeIoError(error, file, `lock ${options.label}`);
      }
      let state: LockState | undefined;
      try {
        state = await readLock(file);
      } catch (error) {
        throw storeIoError(error, file, `read the lock of ${options.label}`);
      }
      if (!state) continue;
      const now = Date.now();
      if (!watched || watched.raw !== state.raw || watched.mtimeMs !== state.mtimeMs) watched = { raw: state.raw, mtimeMs: state.mtimeMs, since: now };
      const frozen = now - watched.since > options.staleMs && !(state.holder?.hostname === HOST && state.holder.pid === process.pid && heldTokens.has(state.holder.token));
      if (frozen || isStale(state, options.staleMs, now)) {
        const seen = state.raw;
        try {
          await breakLock(file, seen);
        } catch (error) {
          throw storeIoError(error, file, `break the stale lock of ${options.label}`);
        }
        continue;
      }
      const waited = Date.now() - started;
      if (waited >= options.timeoutMs) {
        const who = state.holder ? `process ${state.holder.pid} on ${state.holder.hostname} (since ${state.holder.createdAt})` : 'another process';
        throw new GraftError(
          ARTIFACT_ERROR_CODES.locked,
          `${options.label} is being built by ${who}; gave up after waiting ${Math.round(waited / 1000)} s. ` +
            `Retry when that run finishes, or delete ${file} if you are sure no graft process is using the store.`,
        );
      }
      if (waited >= nextReport) {
        nextReport = waited + (options.waitReportMs ?? 30_000);
        options.onWait?.({ holder: state.holder, waitedMs: waited, heartbeatAgeMs: Date.now() - state.mtimeMs, staleMs: options.staleMs });
      }
      await sleep(Math.min(pollMs, Math.max(1, options.timeoutMs - waited)));
      pollMs = Math.min(pollMs * 2, 500);
    }
  }

  /** Deletes the lock if it is still ours (it may have been broken as stale meanwhile). Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.heartbeat);
    heldTokens.delete(this.holder.token);
    const deadline = Date.now() + 2_000;
    try {
      while (!(await underGuard(this.file, () => unlinkIfUnchanged(this.file, this.raw)))) {
        if (Date.now() > deadline) {
          // A guard that will not go away: remove ours unguarded rather than leave it behind.
          await unlinkIfUnchanged(this.file, this.raw);
          return;
        }
        await sleep(10);
      }
    } catch (error) {
      throw storeIoError(error, this.file, 'release the artifact lock');
    }
  }
}
