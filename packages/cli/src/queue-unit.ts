/**
 * The unit runner of `graft worker`: each job's unit is built in a child process
 * (queue-unit-child.ts) that runs @graft/sweep's executeUnit against the worker's store and
 * remote. Why a process per unit: training runs long synchronous stretches, and BullMQ
 * renews the job's lock from the worker's event loop; with training elsewhere, a busy
 * worker never looks dead, and a dead one (kill -9) takes its child with it (the child
 * exits when its IPC channel to the worker closes), so no orphan keeps building a unit that
 * another worker has taken over. One compute backend per process, as the wasm backend is
 * single-threaded.
 */
import { spawn } from 'node:child_process';
import { GraftError, entryPointArgs, type ExitCode } from '@graft/core';
import type { UnitRunner } from '@graft/queue';
import type { SweepPlan } from '@graft/sweep';
import type { RemoteArgs } from './commands/remote.ts';

export interface UnitChildRequest {
  type: 'run';
  plan: Pick<SweepPlan, 'sweepId' | 'configPath' | 'configName'> & { run: SweepPlan['runs'][number] };
  unit: SweepPlan['units'][number];
  storeRoot: string;
  remote: RemoteArgs;
  verbose: boolean;
  job: { attempt: number };
}

export type UnitChildMessage =
  | { type: 'progress'; done: number; total: number }
  | { type: 'result'; outcome: 'built' | 'pulled' | 'cached'; durationMs: number; runId: string }
  | { type: 'error'; code: string; message: string; exitCode: ExitCode };

export const UNIT_CHILD_FAILED = 'QUEUE_UNIT_FAILED';

export function createUnitRunner(options: { storeRoot: string; remote: RemoteArgs; verbose: boolean }): UnitRunner {
  return ({ submission, unit: queued, attempt, signal, onProgress }) =>
    new Promise((resolve, reject) => {
      const plan = submission.plan as SweepPlan;
      const unit = plan.units.find((u) => u.id === queued.id);
      if (!unit) return reject(new GraftError(UNIT_CHILD_FAILED, `sweep ${submission.sweepId}'s plan has no unit ${queued.id}`));
      const request: UnitChildRequest = {
        type: 'run',
        plan: { sweepId: plan.sweepId, configPath: plan.configPath, configName: plan.configName, run: plan.runs[unit.run]! },
        unit,
        storeRoot: options.storeRoot,
        remote: options.remote,
        verbose: options.verbose,
        job: { attempt },
      };
      // stdout stays the worker's; the child's log records go to the worker's stderr as they are.
      const child = spawn(process.execPath, entryPointArgs(import.meta.url, 'queue-unit-child'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        fn();
      };
      // The child ignores SIGINT and SIGTERM (see queue-unit-child.ts); its last epoch checkpoint stays.
      const onAbort = () => child.kill('SIGKILL');
      signal.addEventListener('abort', onAbort);
      child.on('message', (message: UnitChildMessage) => {
        if (message.type === 'progress') onProgress(message.done, message.total);
        else if (message.type === 'result') settle(() => resolve({ outcome: message.outcome, durationMs: message.durationMs, runId: message.runId }));
        else if (message.type === 'error') settle(() => reject(new GraftError(message.code, message.message, { exitCode: message.exitCode })));
      });
      child.on('error', (error) => settle(() => reject(new GraftError(UNIT_CHILD_FAILED, `could not start the build process: ${error.message}`, { cause: error }))));
      child.on('exit', (code, exitSignal) => {
        if (signal.aborted) return settle(() => reject(signal.reason));
        settle(() =>
          reject(new GraftError(UNIT_CHILD_FAILED, `the build process of ${unit.entry} (${unit.stage} ${unit.key.slice(0, 12)}) died (${exitSignal ? `signal ${exitSignal}` : `exit code ${code}`}) without a result; see its log above`)),
        );
      });
      child.send(request);
    });
}
