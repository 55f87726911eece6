import { UsageError } from '@graft/core';
// Types only: @graft/queue (BullMQ, ioredis) loads inside the handlers that use a queue.
import type { QueueLocation, SweepStatus, UnitStatus } from '@graft/queue';
import type { Argv } from 'yargs';
import { addRemoteOptions } from './remote.ts';
import { DEFAULT_CONFIG, lastValue, resolveConfigPath, storeRoot, type GlobalOptions } from '../options.ts';
import { CLI_ERROR_CODES } from '../error-codes.ts';

interface QueueArgs {
  queue: string | undefined;
  'connect-timeout': number;
}

/** --queue and --connect-timeout: shared by `graft sweep`, `graft sweep status` and `graft worker`. */
function addQueueOptions<T>(y: Argv<T>) {
  return y
    .option('queue', { type: 'string', coerce: lastValue<string>, describe: 'Redis holding the queue: redis://HOST:PORT[/DB] (default: $GRAFT_QUEUE)' })
    .option('connect-timeout', { type: 'number', default: 10, describe: 'Seconds to wait for Redis to answer before giving up' });
}

/** A positive number (seconds, counts) from an option; a usage error naming the flag otherwise. */
function positive(flag: string, value: number, { integer = false, zero = false } = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!zero && value === 0) || (integer && !Number.isInteger(value))) {
    const wanted = integer ? `a whole number from ${zero ? 0 : 1} up` : zero ? 'a number from 0 up' : 'a number above 0';
    throw new UsageError(CLI_ERROR_CODES.badArguments, `--${flag} takes ${wanted}, got ${JSON.stringify(value)}.`);
  }
  return value;
}

/** --queue (or $GRAFT_QUEUE), parsed: a usage error before anything else happens. */
async function queueLocation(argv: QueueArgs): Promise<QueueLocation> {
  const url = argv.queue ?? (process.env['GRAFT_QUEUE'] || undefined);
  if (url === undefined) throw new UsageError(CLI_ERROR_CODES.badArguments, 'Name the queue: --queue redis://HOST:PORT (or set GRAFT_QUEUE).');
  const { parseQueueUrl } = await import('@graft/queue');
  return parseQueueUrl(url);
}

/** Connects to the queue's Redis, failing within --connect-timeout. */
async function openQueueConnection(
  argv: QueueArgs,
  location: QueueLocation | undefined,
  reconnect: boolean,
): Promise<{ location: QueueLocation; connection: Awaited<ReturnType<typeof import('@graft/queue').connectRedis>> }> {
  const where = location ?? (await queueLocation(argv));
  const { connectRedis } = await import('@graft/queue');
  const timeoutMs = positive('connect-timeout', argv['connect-timeout']) * 1000;
  return { location: where, connection: await connectRedis(where, timeoutMs, { reconnect }) };
}

/** Runs a short command's work on the queue; Redis going away mid-way is QUEUE_UNREACHABLE, not a hang or a raw ioredis error. */
async function withQueue<T>(argv: QueueArgs, location: QueueLocation | undefined, work: (queue: { location: QueueLocation; connection: Awaited<ReturnType<typeof import('@graft/queue').connectRedis>> }) => Promise<T>): Promise<T> {
  const opened = await openQueueConnection(argv, location, false);
  const { describeLostRedis } = await import('@graft/queue');
  try {
    return await work(opened);
  } catch (error) {
    throw describeLostRedis(opened.location, error);
  } finally {
    opened.connection.disconnect();
  }
}

/** `graft sweep <target>`, `graft sweep status [id]` and `graft worker`: sweeps on a Redis + BullMQ queue. */
export function registerQueueCommands(cli: Argv<GlobalOptions>): void {
  cli.command('sweep', 'Queue a sweep on Redis for `graft worker`s anywhere, or show its status', (y) =>
    y
      .command(
        '$0 <target>',
        'Plan a sweep (grid x seeds) and queue its builds on Redis; prints the sweep id',
        (a) =>
          addQueueOptions(a)
            .positional('target', { type: 'string', demandOption: true, describe: 'An entry of the config or "all"' })
            .option('config', { alias: 'c', type: 'string', coerce: lastValue<string>, describe: 'Pipeline config file', default: DEFAULT_CONFIG })
            .option('set', { type: 'string', array: true, default: [] as string[], describe: 'Override a param for every run: entry.param=value' })
            .option('grid', { type: 'string', array: true, default: [] as string[], describe: 'A grid axis: entry.param=[v1,v2,...] (JSON values); repeatable, cross product' })
            .option('seeds', { type: 'string', describe: 'Comma-separated seeds: every variant runs once per seed' })
            .option('seed', { type: 'number', describe: 'One seed for every run' })
            .option('backend', { type: 'string', describe: "Compute backend for every run (default: the config's)" })
            .option('attempts', { type: 'number', default: 3, describe: 'Tries per unit before it fails for good (and fails what needs it)' })
            .option('backoff', { type: 'number', default: 30, describe: 'Seconds before the first retry of a failed unit (doubling after)' })
            .option('json', { type: 'boolean', default: false, describe: 'Print the result as one JSON object on the last line of stdout' })
            .example('$0 sweep all -c pipelines/mnist-transfer.quick.json --seeds 0,1 --grid phase-two.learningRate=[1e-4,3e-4] --queue redis://10.0.0.5:6379', '4 runs; start `graft worker --queue ...` anywhere'),
        async (argv) => {
          const [{ relative }, { readConfigFile }, { parseGridFlag, planSweep }, { submitSweep }, { defaultRegistry }, { parseSeeds }] = await Promise.all([
            import('node:path'),
            import('@graft/pipeline'),
            import('@graft/sweep'),
            import('@graft/queue'),
            import('../registry.ts'),
            import('./run.ts'),
          ]);
          const location = await queueLocation(argv);
          const attempts = positive('attempts', argv.attempts, { integer: true });
          const backoffMs = positive('backoff', argv.backoff, { zero: true }) * 1000;
          if (argv.seeds !== undefined && argv.seed !== undefined) throw new UsageError(CLI_ERROR_CODES.badArguments, 'Use either --seed or --seeds, not both.');
          const configPath = resolveConfigPath(argv.config);
          const shownPath = relative(process.cwd(), configPath) || configPath;
          // Everything the user typed is checked before Redis is asked anything.
          const plan = await planSweep({
            raw: await readConfigFile(configPath),
            configPath: shownPath,
            registry: defaultRegistry,
            target: argv.target,
            set: argv.set,
            grid: argv.grid.map(parseGridFlag),
            ...(argv.seeds === undefined ? {} : { seeds: parseSeeds(argv.seeds) }),
            ...(argv.seed === undefined ? {} : { seed: argv.seed }),
            ...(argv.backend === undefined ? {} : { backend: argv.backend }),
          });
          await withQueue(argv, location, async ({ connection }) => {
            const { hostname } = await import('node:os');
            const units = plan.units.map((unit) => {
              const seeds = [...new Set(unit.usedBy.map((use) => plan.runs[use.run]!.seed).filter((s): s is number => s !== undefined))].sort((a, b) => a - b);
              return { id: unit.id, stage: unit.stage, entry: unit.entry, key: unit.key, needs: unit.needs, ...(seeds.length ? { seeds } : {}) };
            });
            const { queued, retried, resubmitted } = await submitSweep(connection, {
              sweepId: plan.sweepId,
              createdAt: new Date().toISOString(),
              submittedBy: { hostname: hostname(), pid: process.pid },
              configName: plan.configName,
              target: plan.target,
              runs: plan.runs.length,
              units,
              plan,
              attempts,
              backoffMs,
            });
            if (argv.json) {
              process.stdout.write(JSON.stringify({ sweepId: plan.sweepId, queue: location.url, runs: plan.runs.length, units: units.length, queued, retried, resubmitted }) + '\n');
            } else {
              process.stderr.write(
                resubmitted
                  ? `sweep ${plan.sweepId} was already on ${location.url}: ${retried} failed unit(s) retried, ${queued} ready unit(s) (re)queued; units already done stay done\n`
                  : `sweep ${plan.sweepId}: ${plan.runs.length} run(s), ${units.length} unique build(s) on ${location.url}; ${queued} ready now, the rest queued as their inputs finish.\n` +
                      `Start workers: graft worker --queue ${location.url} --remote s3://BUCKET/PREFIX   Status: graft sweep status ${plan.sweepId} --queue ${location.url}\n`,
              );
              process.stdout.write(`${plan.sweepId}\n`);
            }
          });
        },
      )
      .command(
        'status [sweep]',
        'Queued / active / done / failed units of a sweep and who runs what (every sweep without an id)',
        (a) =>
          addQueueOptions(a)
            .positional('sweep', { type: 'string', describe: 'A sweep id or a unique prefix' })
            .option('json', { type: 'boolean', default: false, describe: 'Print the status as one JSON object' })
            .option('wait', { type: 'boolean', default: false, describe: 'Wait until the sweep has finished (exit 1 if a unit failed)' }),
        async (argv) => {
          const { listSweepIds, resolveSweepId, sweepStatus } = await import('@graft/queue');
          await withQueue(argv, undefined, async ({ location, connection }) => {
            if (argv.sweep === undefined) {
              if (argv.wait) throw new UsageError(CLI_ERROR_CODES.badArguments, '--wait needs a sweep id: graft sweep status <id> --wait.');
              const statuses = await Promise.all((await listSweepIds(connection)).map((id) => sweepStatus(connection, id)));
              if (argv.json) process.stdout.write(JSON.stringify({ queue: location.url, sweeps: statuses.map(({ units: _units, ...rest }) => rest) }) + '\n');
              else process.stdout.write(statuses.length === 0 ? `no sweep on ${location.url}\n` : statuses.map(sweepLine).join('\n') + '\n');
              return;
            }
            const id = await resolveSweepId(connection, argv.sweep);
            let status = await sweepStatus(connection, id);
            while (argv.wait && !status.finished) {
              await new Promise((r) => setTimeout(r, 2_000));
              status = await sweepStatus(connection, id);
            }
            process.stdout.write(argv.json ? JSON.stringify(status) + '\n' : formatStatus(status));
            if (argv.wait && status.counts.failed + status.counts['upstream-failed'] > 0) process.exitCode = 1;
          });
        },
      ),
  );

  cli.command(
    'worker',
    'Take sweep units from a Redis queue and build them (pull inputs from the remote, push what is built)',
    (y) =>
      addRemoteOptions(addQueueOptions(y))
        .option('concurrency', { type: 'number', default: 1, describe: 'Units built at once (each in its own process; the wasm backend uses one core)' })
        .option('exit-when-idle', { type: 'boolean', default: false, describe: 'Exit once the queue has nothing waiting, retrying or running (for batch jobs: K8s Jobs, Slurm arrays)' })
        .option('idle-seconds', { type: 'number', default: 10, describe: 'With --exit-when-idle: how long the queue must stay empty' })
        .option('lock-duration', { type: 'number', default: 30, describe: "Seconds a job's lock lasts unless renewed; a killed worker's unit is retried after it" })
        .option('stalled-interval', { type: 'number', default: 30, describe: 'Seconds between checks for units of workers that died' })
        .option('max-stalled', { type: 'number', default: 2, describe: 'Times one unit may be recovered from a dead worker before it fails' })
        .option('redis-lost-timeout', { type: 'number', default: 60, describe: 'Seconds to wait for a lost Redis to come back before exiting with an error' })
        .example('$0 worker --queue redis://10.0.0.5:6379 --remote s3://my-bucket/graft --exit-when-idle', 'One worker; run as many as there are cores and machines'),
    async (argv) => {
      const location = await queueLocation(argv);
      const concurrency = positive('concurrency', argv.concurrency, { integer: true });
      const timing = {
        lockDurationMs: positive('lock-duration', argv['lock-duration']) * 1000,
        stalledIntervalMs: positive('stalled-interval', argv['stalled-interval']) * 1000,
        maxStalledCount: positive('max-stalled', argv['max-stalled'], { integer: true }),
        idleGraceMs: positive('idle-seconds', argv['idle-seconds'], { zero: true }) * 1000,
        redisLostTimeoutMs: positive('redis-lost-timeout', argv['redis-lost-timeout']) * 1000,
      };
      const [{ ArtifactStore }, { startQueueWorker }, { createLogger }, { createUnitRunner }] = await Promise.all([
        import('@graft/artifacts'),
        import('@graft/queue'),
        import('../logging.ts'),
        import('../queue-unit.ts'),
      ]);
      // The store and the remote are checked before the worker takes anything.
      const store = new ArtifactStore(await storeRoot(argv));
      await store.prepare('write');
      const { openRemoteFrom } = await import('./remote.ts');
      const remote = await openRemoteFrom(argv);
      remote?.close();
      const { connection } = await openQueueConnection(argv, location, true);
      const logger = await createLogger({ level: argv.verbose ? 'debug' : 'info' });
      if (!remote) {
        logger.warn({}, `no --remote (or GRAFT_REMOTE): units find their inputs only in ${store.root}, so every worker of this queue must share that store (one file system); workers with stores of their own need one remote`);
      }
      const units = createUnitRunner({
        storeRoot: store.root,
        remote: { remote: argv.remote, endpoint: argv.endpoint, pathStyle: argv.pathStyle },
        verbose: argv.verbose,
        concurrency,
      });
      const worker = startQueueWorker({
        connection,
        queueUrl: location.url,
        logger,
        concurrency,
        exitWhenIdle: argv['exit-when-idle'],
        ...timing,
        runUnit: units.runUnit,
      });
      // SIGTERM (a scheduler preempting us) gives the units back at once; a first Ctrl-C lets them finish, a second gives them back.
      let interrupts = 0;
      const onSigint = () => {
        interrupts += 1;
        logger.warn({}, interrupts === 1 ? 'Ctrl-C: finishing the running unit(s), taking no new ones (Ctrl-C again gives them back to the queue)' : 'giving the running unit(s) back to the queue');
        void worker.stop(interrupts === 1 ? 'finish' : 'release');
      };
      const onSigterm = () => {
        logger.warn({}, 'SIGTERM: giving the running unit(s) back to the queue');
        void worker.stop('release');
      };
      process.on('SIGINT', onSigint);
      process.on('SIGTERM', onSigterm);
      try {
        const summary = await worker.done;
        logger.info({ ...summary }, `worker stopped (${summary.reason}): ${summary.completed} unit(s) done, ${summary.failed} failed, ${summary.released} given back`);
      } finally {
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigterm);
        await units.close();
        connection.disconnect();
      }
    },
  );
}

function time(iso: string | undefined): string {
  return iso ? iso.slice(11, 19) : '';
}

function sweepLine(status: SweepStatus): string {
  const c = status.counts;
  const state = status.finished ? (c.failed + c['upstream-failed'] > 0 ? 'finished with failures' : 'finished') : 'running';
  return `${status.sweepId}  ${status.createdAt.slice(0, 19)}Z  ${status.configName ?? ''} ${status.target ?? ''}  ${status.runs} run(s)  ${status.units.length} units: ${countsText(status)}  ${state}`;
}

function countsText(status: SweepStatus): string {
  const c = status.counts;
  return `${c.done} done, ${c.active} active, ${c.queued} queued, ${c.retrying} retrying, ${c.failed} failed, ${c['upstream-failed']} upstream-failed, ${c.blocked} waiting for inputs`;
}

function note(unit: UnitStatus): string {
  if (unit.state === 'done') return unit.outcome ?? '';
  if (unit.state === 'active') return `${unit.progress ? `step ${unit.progress.done}/${unit.progress.total}` : ''}${(unit.attemptsMade ?? 0) > 0 ? ` (attempt ${(unit.attemptsMade ?? 0) + 1})` : ''}`;
  if (unit.error) return `error: ${unit.error.split('\n')[0]}`;
  return '';
}

export function formatStatus(status: SweepStatus): string {
  const header = `sweep ${status.sweepId}  ${status.configName ?? ''} ${status.target ?? ''}  ${status.runs} run(s)  submitted ${status.createdAt.slice(0, 19)}Z by ${status.submittedBy.hostname}#${status.submittedBy.pid}`;
  const rows = status.units.map((u) => [u.state, u.stage, u.entry, u.key.slice(0, 12), (u.seeds ?? []).join(','), u.worker ? `${u.worker.hostname}#${u.worker.pid}` : '', time(u.since), note(u)]);
  const head = ['STATE', 'STAGE', 'ENTRY', 'KEY', 'SEEDS', 'WORKER', 'SINCE', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  const summary = `${status.units.length} units: ${countsText(status)}${status.finished ? ' (finished)' : ''}`;
  return [header, summary, line(head), ...rows.map(line)].join('\n') + '\n';
}
