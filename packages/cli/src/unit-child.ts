/**
 * A `graft run --jobs N` worker process (started by unit-pool.ts): builds the units its parent
 * sends, one at a time, with @graft/sweep's executeUnit, and reports log records, progress and
 * the result over IPC. It exits when its parent closes the channel or goes away (a parent
 * killed with kill -9 takes its workers down with it), and on SIGTERM at once: the store's
 * locks and temp dirs make an unfinished build invisible, and its checkpoints let the next
 * run resume.
 */
import { Writable } from 'node:stream';
import { isGraftError, type ProgressReporter } from '@graft/core';
import type { UnitJob } from '@graft/sweep';
import type { ChildMessage, ChildSetup, ParentMessage } from './unit-pool.ts';

const send = (message: ChildMessage): void => {
  if (process.connected) process.send!(message);
};

process.on('disconnect', () => process.exit(0));
// Ctrl-C in a terminal reaches the whole process group; the parent decides what it means
// (`graft run --jobs` stops its builds, `graft worker` lets a first Ctrl-C finish them).
process.on('SIGINT', () => {});

let ready: Promise<(job: UnitJob) => Promise<void>> | undefined;

process.on('message', (message: ParentMessage) => {
  if (message.type === 'setup') {
    ready = prepare(message.setup);
    return;
  }
  void (async () => {
    const runUnit = await ready!;
    await runUnit(message.job);
  })().catch((error: unknown) => {
    send({ type: 'failed', error: { code: isGraftError(error) ? error.code : 'UNEXPECTED', message: error instanceof Error ? error.message : String(error), exitCode: isGraftError(error) ? error.exitCode : 1 } });
  });
});

async function prepare(setup: ChildSetup): Promise<(job: UnitJob) => Promise<void>> {
  const [{ ArtifactStore }, { executeUnit }, { defaultRegistry }, pino, { describeLockWait }] = await Promise.all([
    import('@graft/artifacts'),
    import('@graft/sweep'),
    import('./registry.ts'),
    import('pino'),
    import('./commands/run.ts'),
  ]);
  // Every record goes to the parent, which writes it to the run's log and the terminal.
  const toParent = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') send({ type: 'log', line });
      done();
    },
  });
  const logger = pino.default({ level: 'debug', base: undefined }, toParent);
  const store = new ArtifactStore(setup.storeRoot, {
    lockTimeoutMs: Number.POSITIVE_INFINITY,
    onLockWait: (wait) => logger.warn(describeLockWait(wait)),
  });
  let remote: import('@graft/pipeline').SharedArtifacts | undefined;
  if (setup.remote) {
    const [{ openRemote }, { sharedArtifacts }] = await Promise.all([import('@graft/remote'), import('./commands/remote.ts')]);
    remote = sharedArtifacts(await openRemote(setup.remote), store);
  }
  const progress: ProgressReporter = {
    start: (label, total) => send({ type: 'progress', op: 'start', label, total }),
    update: (current, fields) => send({ type: 'progress', op: 'update', current, ...(fields ? { fields } : {}) }),
    stop: () => send({ type: 'progress', op: 'stop' }),
  };
  const userEvaluation = process.env['GRAFT_EVALUATION'];
  return async (job) => {
    // When the parent's builds fill every core, an evaluation worker thread would only compete
    // with them for the same cores: evaluate on the training thread instead (same numbers,
    // curve-evaluation.e2e.test.ts). A GRAFT_EVALUATION the user set is left alone.
    if (userEvaluation === undefined || userEvaluation === '') {
      if (job.inlineEvaluation) process.env['GRAFT_EVALUATION'] = 'inline';
      else delete process.env['GRAFT_EVALUATION'];
    }
    const result = await executeUnit(job.unit, {
      registry: defaultRegistry,
      store,
      logger,
      createProgress: () => progress,
      selectBackend: async (requested, log) => {
        const { initBackend } = await import('@graft/model');
        const info = await initBackend(requested, log);
        return { backend: info.backend, tfjsVersion: info.tfjsVersion };
      },
      ...(remote ? { remote } : {}),
      force: job.force,
      resume: setup.resume,
      rebuildCorrupt: setup.rebuildCorrupt,
    });
    send({ type: 'done', result });
  };
}
