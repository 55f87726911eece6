import { accessSync, constants, mkdirSync } from 'node:fs';
import { relative } from 'node:path';
import type { LockWait } from '@graft/artifacts';
import { BACKEND_REQUESTS, UsageError, describeSystemError, type SelectedBackend } from '@graft/core';
import type { Logger } from 'pino';
import type { RunRecord } from '@graft/runs';
import type { Argv } from 'yargs';
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
        .option('seeds', { type: 'string', describe: 'Comma-separated seeds: one run per seed, e.g. 1,2,3' })
        .option('backend', { type: 'string', choices: BACKEND_REQUESTS, describe: 'Compute backend (default: the config\'s, else auto)' })
        .option('force', { type: 'boolean', default: false, describe: 'Rebuild the named entry (every entry for "all") even if cached' })
        .option('resume', { type: 'boolean', default: true, describe: 'Resume training from checkpoints; --no-resume starts fresh' })
        .option('rebuild', { type: 'boolean', default: true, describe: 'Rebuild corrupt cached artifacts; --no-rebuild stops with an error instead' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the result as one JSON object on the last line of stdout' })
        .example('$0 run all', 'The whole reference experiment')
        .example('$0 run phase-two --set phase-two.epochs=2', 'Re-run phase two with 2 epochs, reusing cached upstream artifacts')
        .example('$0 run all --config pipelines/mnist-transfer.quick.json', 'A few-minute smoke run')
        .example('$0 run all --remote s3://my-bucket/graft', 'Pull what others built, build the rest, push it'),
    async (argv) => {
      // Loaded here, not at the top: `graft --help` and the other commands stay fast.
      const [{ ArtifactStore }, { entriesFor, readConfigFile, resolveConfig, runPipeline, summariseMetrics }, { newRunId, runLogPath }, { defaultRegistry }, { createLogger, createProgressFactory }] =
        await Promise.all([import('@graft/artifacts'), import('@graft/pipeline'), import('@graft/runs'), import('../registry.ts'), import('../logging.ts')]);
      const configPath = resolveConfigPath(argv.config);
      const seeds = argv.seeds === undefined ? [argv.seed] : parseSeeds(argv.seeds);
      if (argv.seeds !== undefined && argv.seed !== undefined) throw new UsageError(CLI_ERROR_CODES.badArguments, 'Use either --seed or --seeds, not both.');
      const raw = await readConfigFile(configPath);
      // Validate every seed's config before running anything.
      const configs = seeds.map((seed) =>
        resolveConfig(raw, defaultRegistry, relative(process.cwd(), configPath) || configPath, {
          set: argv.set,
          ...(seed === undefined ? {} : { seed }),
          ...(argv.backend === undefined ? {} : { backend: argv.backend }),
        }),
      );
      // An unknown target is a usage error before anything (run dir, log file) is created.
      for (const config of configs) entriesFor(config, argv.target);
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
      const records: RunRecord[] = [];
      try {
        for (const config of configs) {
          const runId = newRunId();
          const logger = await createLogger({ logFile: runLogPath(store.root, runId), level: argv.verbose ? 'debug' : 'info' });
          const record = await runPipeline({
            config,
            configPath: relative(process.cwd(), configPath) || configPath,
            registry: defaultRegistry,
            store,
            target: argv.target,
            runId,
            logger,
            createProgress: await createProgressFactory(logger),
            force: argv.force,
            resume: argv.resume,
            rebuildCorrupt: argv.rebuild,
            ...(remote ? { remote: sharedArtifacts(remote, store) } : {}),
            selectBackend,
          });
          records.push(record);
          if (!argv.json) printSummary(record, summariseMetrics);
        }
      } finally {
        remote?.close();
      }
      if (argv.json) {
        const summaries = records.map(jsonSummary);
        process.stdout.write(JSON.stringify(summaries.length === 1 ? summaries[0] : { runs: summaries }) + '\n');
      }
    },
  );
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
