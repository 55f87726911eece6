import { UsageError } from '@graft/core';
import type { Argv } from 'yargs';
import { CLI_ERROR_CODES } from '../error-codes.ts';
import { lastValue, storeRoot as storeRootOf, type GlobalOptions } from '../options.ts';

/** `graft report <run>... [--out report.html]` (anchors: dvc plots diff's HTML, MLflow's compare page). */
export function registerReportCommands(cli: Argv<GlobalOptions>): void {
  cli.command(
    'report <runs..>',
    'Write one self-contained HTML report of runs: params, lineage, curves, per-class accuracy, confusion, seeds, timings',
    (y) =>
      y
        .positional('runs', { type: 'string', array: true, demandOption: true, describe: 'Run ids, unique prefixes, latest, latest~N' })
        .option('out', { type: 'string', default: 'report.html', coerce: lastValue<string>, describe: 'The .html file to write' })
        .example('$0 report latest latest~1 --out report.html', 'The last two experiments side by side'),
    async (argv) => {
      const refs = argv.runs as string[];
      if (refs.length < 1) throw new UsageError(CLI_ERROR_CODES.badArguments, 'Name at least one run (e.g. graft report latest).');
      const { resolveRunRefs } = await import('@graft/runs');
      const storeRoot = await storeRootOf(argv);
      const runs = await resolveRunRefs(storeRoot, refs);
      // Loaded here: only this command reads the browser bundles.
      const { writeReport } = await import('@graft/report');
      const bytes = await writeReport(runs, storeRoot, argv.out);
      process.stderr.write(`report of ${runs.length} run${runs.length === 1 ? '' : 's'} written to ${argv.out} (${(bytes / 1024 / 1024).toFixed(2)} MB)\n`);
    },
  );
}

/** `graft ui [--port N] [--host H]`: the local, read-only web UI over the store. */
export function registerUiCommand(cli: Argv<GlobalOptions>): void {
  cli.command(
    'ui',
    'Serve a local, read-only web UI over the store: runs, compare, artifacts, model playground',
    (y) =>
      y
        .option('port', { type: 'number', default: 8750, coerce: lastValue<number>, describe: 'Port to listen on (0: any free port)' })
        .option('host', { type: 'string', default: '127.0.0.1', coerce: lastValue<string>, describe: 'Address to bind; the default keeps the store private to this machine' }),
    async (argv) => {
      if (!Number.isInteger(argv.port) || argv.port < 0 || argv.port > 65535) throw new UsageError(CLI_ERROR_CODES.badArguments, `--port ${argv.port} is not a port number (0-65535).`);
      const { startUiServer } = await import('@graft/report');
      const storeRoot = await storeRootOf(argv);
      const server = await startUiServer({ storeRoot, host: argv.host, port: argv.port });
      process.stdout.write(`graft ui serving ${storeRoot} at ${server.url} (Ctrl-C stops it)\n`);
      await new Promise<void>((done) => {
        const stop = () => void server.close().then(done);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    },
  );
}
