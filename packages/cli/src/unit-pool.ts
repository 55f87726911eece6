import { spawn, type ChildProcess } from 'node:child_process';
import { GraftError, entryPointArgs, type ExitCode, type ProgressReporter } from '@graft/core';
import { SWEEP_ERROR_CODES, type BuildUnit, type UnitError, type UnitJob, type UnitPool, type UnitResult } from '@graft/sweep';
import type { Logger } from 'pino';

/**
 * `graft run --jobs N`'s worker processes: each a Node process running unit-child.ts (an entry
 * point, bundled beside the CLI), with its own compute backend — the wasm backend is
 * single-threaded, so one build per process is what uses a core. A process builds one unit
 * at a time and is reused for the next; its log records and progress come back over IPC.
 */

/** What a worker needs to open the store (and the remote) as the parent did. */
export interface ChildSetup {
  storeRoot: string;
  resume: boolean;
  rebuildCorrupt: boolean;
  remote?: { url: string; endpoint?: string; pathStyle?: boolean };
}

export type ParentMessage = { type: 'setup'; setup: ChildSetup } | { type: 'unit'; job: UnitJob };

export type ChildMessage =
  | { type: 'log'; line: string }
  | { type: 'progress'; op: 'start'; label: string; total: number }
  | { type: 'progress'; op: 'update'; current: number; fields?: Record<string, string | number> }
  | { type: 'progress'; op: 'stop' }
  | { type: 'done'; result: UnitResult }
  | { type: 'failed'; error: UnitError };

interface Worker {
  child: ChildProcess;
  exited: Promise<void>;
  /** The unit it is building, and how to report to its caller. */
  current?: { unit: BuildUnit; hooks: { logger: Logger; progress: ProgressReporter }; resolve: (r: UnitResult) => void; reject: (e: unknown) => void };
}

export class ChildUnitPool implements UnitPool {
  private readonly idle: Worker[] = [];
  private readonly workers = new Set<Worker>();
  private closing = false;

  constructor(private readonly setup: ChildSetup) {}

  /**
   * `signal` (graft worker: a job given back or its lock lost) stops this one build: its
   * process is killed (SIGKILL; the store's lock and temp dir make the unfinished build
   * invisible, its epoch checkpoints stay) and the promise rejects with UNIT_CHILD_FAILED.
   */
  execute(job: UnitJob, hooks: { logger: Logger; progress: ProgressReporter }, signal?: AbortSignal): Promise<UnitResult> {
    if (this.closing) return Promise.reject(new GraftError(SWEEP_ERROR_CODES.childFailed, 'the worker pool is closing'));
    const worker = this.idle.pop() ?? this.spawnWorker();
    return new Promise<UnitResult>((resolve, reject) => {
      const stop = () => worker.child.kill('SIGKILL');
      signal?.addEventListener('abort', stop, { once: true });
      const done = () => signal?.removeEventListener('abort', stop);
      worker.current = { unit: job.unit, hooks, resolve: (result) => (done(), resolve(result)), reject: (error) => (done(), reject(error)) };
      worker.child.send({ type: 'unit', job } satisfies ParentMessage);
      if (signal?.aborted) stop();
    });
  }

  async close(how: 'drain' | 'kill'): Promise<void> {
    this.closing = true;
    for (const worker of this.workers) {
      // A worker exits when its channel closes; a busy one is stopped only when asked to kill.
      if (how === 'kill') worker.child.kill('SIGTERM');
      else if (!worker.current && worker.child.connected) worker.child.disconnect();
    }
    await Promise.all([...this.workers].map((w) => w.exited));
  }

  private spawnWorker(): Worker {
    // stdout of the worker goes to our stderr: stdout is kept for results (--json).
    const child = spawn(process.execPath, entryPointArgs(import.meta.url, 'unit-child'), { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: process.env });
    child.stdout!.pipe(process.stderr, { end: false });
    child.stderr!.pipe(process.stderr, { end: false });
    const worker: Worker = {
      child,
      exited: new Promise<void>((resolve) => {
        const gone = (exitInfo: string) => {
          this.workers.delete(worker);
          const index = this.idle.indexOf(worker);
          if (index >= 0) this.idle.splice(index, 1);
          const current = worker.current;
          worker.current = undefined;
          current?.reject(
            new GraftError(
              SWEEP_ERROR_CODES.childFailed,
              `the process building ${current.unit.entry} ${current.unit.key.slice(0, 12)} (pid ${child.pid}) ${exitInfo} before it finished (out of memory, or killed)`,
            ),
          );
          resolve();
        };
        child.once('exit', (code, signal) => gone(signal ? `was killed by ${signal}` : `exited with code ${code}`));
        // A process that could not be started emits no 'exit': report it the same way.
        child.once('error', (error) => {
          if (child.pid === undefined) gone(`could not be started (${error.message})`);
        });
      }),
    };
    child.on('message', (message: ChildMessage) => this.onMessage(worker, message));
    child.send({ type: 'setup', setup: this.setup } satisfies ParentMessage);
    this.workers.add(worker);
    return worker;
  }

  private onMessage(worker: Worker, message: ChildMessage): void {
    const current = worker.current;
    if (!current) return;
    switch (message.type) {
      case 'log':
        relayLog(current.hooks.logger, message.line);
        return;
      case 'progress':
        if (message.op === 'start') current.hooks.progress.start(message.label, message.total);
        else if (message.op === 'update') current.hooks.progress.update(message.current, message.fields);
        else current.hooks.progress.stop();
        return;
      case 'done':
      case 'failed':
        worker.current = undefined;
        if (this.closing) worker.child.disconnect();
        else this.idle.push(worker);
        if (message.type === 'done') current.resolve(message.result);
        else current.reject(new GraftError(message.error.code, message.error.message, { exitCode: message.error.exitCode as ExitCode }));
        return;
    }
  }
}

const LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** A worker's pino record, logged again by the run's logger (its log.ndjson and the terminal). */
function relayLog(logger: Logger, line: string): void {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    logger.info(line.trim());
    return;
  }
  const { level, time: _time, msg, ...fields } = record;
  const method = LEVELS[level as number] ?? 'info';
  logger[method](fields, typeof msg === 'string' ? msg : '');
}
