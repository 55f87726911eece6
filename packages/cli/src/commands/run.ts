import { accessSync, constants, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { relative } from 'node:path';
import type { LockWait } from '@graft/artifacts';
import { BACKEND_REQUESTS, UsageError, describeSystemError, isGraftError, type SelectedBackend } from '@graft/core';
import type { Logger } from 'pino';
import type { RunRecord } from '@graft/runs';
import type { Argv } from 'yargs';
import type { ChildSetup } from '../unit-pool.ts';
import { addRemoteOptions, openRemoteFrom, sharedArtifacts } from './remote.ts';
import { DEFAULT_CONFIG, lastValue, resolveConfigPath, storeRoot, type GlobalOptions } from '../options.ts';
import { CLI_ERROR_CODES } from '../error-codes.ts';

/** `graft run <target>`: build (or reuse) the target entry and everything it needs. */
export function registerRunCommand(cli: Argv<GlobalOptions>): void {
  cli.command(
    'run <target>',
    'Run one pipeline entry (and what it needs upstream) or "all"',
    (y) =>
      addRemoteOptions(y)
        .positional('target', { type: 'string', demandOption: true, describe: 'An entry of the config (ingest, split, phase-one, transplant, phase-two, ...) or "all"' })
        .option('config', { alias: 'c', type: 'string', coerce: lastValue<string>, describe: 'Pipeline config file', default: DEFAULT_CONFIG })
        .option('set', { type: 'string', array: true, default: [] as string[], describe: 'Override a param: entry.param=value (JSON values: 2, true, [3,9]); repeatable' })
        .option('seed', { type: 'number', describe: 'Seed for every entry that has one' })
        .option('seeds', { type: 'string', describe: "Comma-separated seeds: one run per seed (of every grid point), e.g. 1,2,3; replaces the config's sweep.seeds" })
        .option('grid', {
          type: 'string',
          array: true,
          default: [] as string[],
          describe: "Vary a param: entry.param=[v1,v2] (JSON values); repeatable, one run per combination (x --seeds). Adds to the config's sweep.grid; an axis naming the same entry.param replaces the config's",
        })
        .option('jobs', {
          alias: 'j',
          type: 'string',
          coerce: lastValue<string>,
          describe: 'Builds at once, each in its own process (default: the number of cores); 1 = one after another in this process',
        })
        .option('backend', { type: 'string', choices: BACKEND_REQUESTS, describe: 'Compute backend (default: the config\'s, else auto)' })
        .option('force', { type: 'boolean', default: false, describe: 'Rebuild the named entry (every entry for "all") even if cached' })
        .option('resume', { type: 'boolean', default: true, describe: 'Resume training from checkpoints; --no-resume starts fresh' })
        .option('rebuild', { type: 'boolean', default: true, describe: 'Rebuild corrupt cached artifacts; --no-rebuild stops with an error instead' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the result as one JSON object on the last line of stdout' })
        .example('$0 run all', 'The whole reference experiment')
        .example('$0 run phase-two --set phase-two.epochs=2', 'Re-run phase two with 2 epochs, reusing cached upstream artifacts')
        .example('$0 run all --config pipelines/mnist-transfer.quick.json', 'A few-minute smoke run')
        .example('$0 run all --config pipelines/mnist-transfer.baselines.json --seeds 0,1,2 --jobs 2', 'Three seeds of three variants, two builds at a time')
        .example('$0 run phase-two --grid phase-two.learningRate=[1e-4,3e-4] --seeds 0,1', 'A sweep: 2 learning rates x 2 seeds (graft compare sweep:<id>)')
        .example('$0 run all --remote s3://my-bucket/graft', 'Pull what others built, build the rest, push it'),
    async (argv) => {
      // Loaded here, not at the top: `graft --help` and the other commands stay fast.
      const [{ ArtifactStore }, { readConfigFile, summariseMetrics }, { runLogPath }, sweep, { defaultRegistry }, logging] = await Promise.all([
        import('@graft/artifacts'),
        import('@graft/pipeline'),
        import('@graft/runs'),
        import('@graft/sweep'),
        import('../registry.ts'),
        import('../logging.ts'),
      ]);
      const configPath = resolveConfigPath(argv.config);
      const shownPath = relative(process.cwd(), configPath) || configPath;
      if (argv.seeds !== undefined && argv.seed !== undefined) throw new UsageError(CLI_ERROR_CODES.badArguments, 'Use either --seed or --seeds, not both.');
      const seeds = argv.seeds === undefined ? undefined : parseSeeds(argv.seeds);
      const grid = argv.grid.map((flag) => sweep.parseGridFlag(String(flag)));
      const jobs = sweep.parseJobs(argv.jobs ?? availableParallelism());
      const raw = await readConfigFile(configPath);
      // Every run's config is resolved (and validated) and every key computed before anything runs.
      const plan = await sweep.planSweep({
        raw,
        configPath: shownPath,
        registry: defaultRegistry,
        target: argv.target,
        set: argv.set,
        grid,
        ...(seeds === undefined ? {} : { seeds }),
        ...(argv.seed === undefined ? {} : { seed: argv.seed }),
        ...(argv.backend === undefined ? {} : { backend: argv.backend }),
      });
      // A bad --remote or --endpoint is a usage error before anything is created.
      const remote = await openRemoteFrom(argv);
      const store = new ArtifactStore(await storeRoot(argv), {
        // Wait as long as the other builder is alive (its heartbeat stays fresh): phase one
        // alone takes longer than any fixed bound. Dead or stale holders are broken at once.
        lockTimeoutMs: Number.POSITIVE_INFINITY,
        onLockWait: (wait) => process.stderr.write(`graft: ${describeLockWait(wait)}\n`),
      });
      const before = await store.prepare('write');
      if (before.kind === 'legacy') process.stderr.write(`graft: marked ${store.root} as a graft artifact store (it was made by an older graft)\n`);
      assertWritable(store.root);
      const level = argv.verbose ? 'debug' : 'info';
      const printRun = (record: RunRecord) => {
        if (!argv.json) printSummary(record, summariseMetrics);
      };
      let outcome: import('@graft/sweep').PlanOutcome;
      try {
        const common = {
          plan,
          store,
          registry: defaultRegistry,
          force: argv.force,
          rebuildCorrupt: argv.rebuild,
          ...(remote ? { remote: sharedArtifacts(remote, store) } : {}),
          onRunFinished: printRun,
        };
        if (jobs === 1 || sweep.isChain(plan)) {
          // One build at a time (or a plan whose builds can never overlap): in this process, run by run.
          outcome = await sweep.runPlanInProcess({
            ...common,
            loggerFor: (_run, runId) => logging.createLogger({ logFile: runLogPath(store.root, runId), level }),
            createProgressFor: (logger) => logging.createProgressFactory(logger),
            resume: argv.resume,
            selectBackend,
          });
        } else {
          const parallel = await runInWorkers(argv, jobs, common, remote === undefined ? undefined : { url: remote.url, endpoint: argv.endpoint, pathStyle: argv.pathStyle }, level, logging, runLogPath, store.root);
          // Stopped by a signal: reported, exit code set; nothing more to print.
          if (!parallel) return;
          outcome = parallel;
        }
      } finally {
        remote?.close();
      }
      if (argv.json) {
        const summaries = outcome.records.map(jsonSummary);
        const sweepId = plan.isSweep ? { sweepId: plan.sweepId } : {};
        process.stdout.write(JSON.stringify(summaries.length === 1 ? { ...summaries[0], ...sweepId } : { ...sweepId, runs: summaries }) + '\n');
      } else if (plan.isSweep) {
        process.stdout.write(`sweep ${plan.sweepId}: ${plan.runs.length} run${plan.runs.length === 1 ? '' : 's'}, ${plan.units.length} unique build${plan.units.length === 1 ? '' : 's'}; compare them with: graft compare sweep:${plan.sweepId}\n`);
      }
      if (outcome.failures.length > 0) throw sweep.describeFailures(outcome.failures, plan.units.length);
    },
  );
}

/**
 * `--jobs N` with builds that can overlap: up to N worker processes (unit-child.ts), one unit
 * each at a time; Ctrl-C / SIGTERM stops them (the store's locks and temp dirs keep it
 * consistent) and exits 130 / 143.
 */
async function runInWorkers(
  argv: { resume: boolean; verbose: boolean },
  jobs: number,
  common: Omit<import('@graft/sweep').ParallelOptions, 'jobs' | 'cores' | 'pool' | 'createProgress' | 'logger' | 'loggerFor'>,
  remote: ChildSetup['remote'],
  level: string,
  logging: typeof import('../logging.ts'),
  runLogPath: (root: string, runId: string) => string,
  storeRootDir: string,
): Promise<import('@graft/sweep').PlanOutcome | undefined> {
  const [{ runPlanInParallel }, { ChildUnitPool }] = await Promise.all([import('@graft/sweep'), import('../unit-pool.ts')]);
  const progress = await logging.createBuildProgress();
  const terminal = progress.terminal ? { terminal: progress.terminal } : {};
  const logger = await logging.createLogger({ level, ...terminal });
  const pool = new ChildUnitPool({ storeRoot: storeRootDir, resume: argv.resume, rebuildCorrupt: common.rebuildCorrupt ?? true, ...(remote ? { remote: stripUndefined(remote) } : {}) });
  const abort = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    signalled ??= signal;
    abort.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await runPlanInParallel({
      ...common,
      jobs,
      cores: availableParallelism(),
      pool,
      logger,
      loggerFor: (_run, runId) => logging.createLogger({ logFile: runLogPath(storeRootDir, runId), level, ...terminal }),
      createProgress: (build, log) => progress.progressFor(build, log),
      signal: abort.signal,
      evaluationFixed: (process.env['GRAFT_EVALUATION'] ?? '') !== '',
    });
  } catch (error) {
    if (signalled && isGraftError(error) && error.code === 'INTERRUPTED') {
      progress.stop();
      process.stderr.write(`graft: [INTERRUPTED] ${error.message}\n`);
      // The shell's convention for a process stopped by a signal: 128 + its number.
      process.exitCode = signalled === 'SIGINT' ? 130 : 143;
      return undefined;
    }
    throw error;
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function stripUndefined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** "ingest 3f2a… is being built by pid 123 on host-b since 12:00:00Z (2 min); last heartbeat 4 s ago; waiting 1 min so far". */
export function describeLockWait(wait: { stage: string; key: string } & LockWait): string {
  const seconds = (ms: number): string => (Math.abs(ms) < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`);
  const { holder } = wait;
  const who = holder ? `pid ${holder.pid} on ${holder.hostname}, lock taken ${holder.createdAt}` : 'another process';
  const beat = wait.heartbeatAgeMs < 0 ? `its heartbeat is stamped ${seconds(-wait.heartbeatAgeMs)} in the future` : `last heartbeat ${seconds(wait.heartbeatAgeMs)} ago`;
  return (
    `${wait.stage} ${wait.key.slice(0, 12)} is being built by ${who}; ${beat}; waiting for it` +
    `${wait.waitedMs > 0 ? ` (${seconds(wait.waitedMs)} so far)` : ''}. A lock without a heartbeat for ${seconds(wait.staleMs)} is taken over.`
  );
}

/** Fail before any work when the store cannot take the run log and artifacts (read-only mount, permissions). */
function assertWritable(root: string): void {
  try {
    mkdirSync(root, { recursive: true });
    accessSync(root, constants.W_OK);
  } catch (error) {
    const reason = describeSystemError(error, root);
    const hint = reason.includes('--artifacts') ? '' : ' Pass a writable directory with --artifacts DIR (or GRAFT_ARTIFACTS).';
    throw new UsageError(CLI_ERROR_CODES.storeNotWritable, `Cannot use the artifact store: ${reason}.${hint}`, { cause: error });
  }
}

/** `--seeds 0,1,2` (also read by `graft sweep`). */
export function parseSeeds(text: string): number[] {
  const seeds = text.split(',').map((part) => part.trim());
  const bad = seeds.filter((s) => !/^\d+$/.test(s));
  if (seeds.length === 0 || bad.length > 0) {
    throw new UsageError(CLI_ERROR_CODES.badArguments, `--seeds takes comma-separated non-negative integers, e.g. --seeds 1,2,3 (bad: ${bad.map((b) => `"${b}"`).join(', ') || 'empty'})`);
  }
  return seeds.map(Number);
}

function jsonSummary(record: RunRecord) {
  return {
    runId: record.runId,
    stages: Object.fromEntries(
      Object.entries(record.stages).map(([entry, s]) => [entry, { key: s.key, path: s.path, cached: s.cached, ...(s.pulled ? { pulled: true } : {}), durationMs: s.durationMs, metrics: s.metrics }]),
    ),
  };
}

function printSummary(record: RunRecord, summariseMetrics: typeof import('@graft/pipeline').summariseMetrics): void {
  const lines = [`run ${record.runId} (${record.target}) ${record.status}`];
  for (const [entry, s] of Object.entries(record.stages)) {
    const metrics = Object.entries(summariseMetrics(s.metrics))
      .filter(([, v]) => typeof v === 'number')
      .slice(0, 4)
      .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : (v as number).toFixed(4)}`)
      .join(' ');
    lines.push(`  ${entry.padEnd(14)} ${s.pulled ? 'pulled' : s.cached ? 'cached' : 'built '} ${s.key.slice(0, 12)} ${(s.durationMs / 1000).toFixed(1).padStart(7)} s  ${metrics}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

/**
 * The runner's backend selection: @graft/model's initBackend, imported only when a stage
 * that computes actually builds (a run served from the cache never loads tfjs). initBackend
 * settles once per process, so every run of a `--seeds` loop shares the first answer.
 */
async function selectBackend(requested: string, logger: Logger): Promise<SelectedBackend> {
  const { initBackend } = await import('@graft/model');
  const info = await initBackend(requested, logger);
  return { backend: info.backend, tfjsVersion: info.tfjsVersion };
}
