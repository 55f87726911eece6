import { resolveStoreRoot } from '@graft/artifacts';
import { UsageError } from '@graft/core';
import { resolveRunRefs } from '@graft/runs';
import type { Argv } from 'yargs';
import { lastValue, type GlobalOptions } from '../options.ts';
import { CLI_ERROR_CODES } from '../error-codes.ts';

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
      const storeRoot = resolveStoreRoot(argv.artifacts);
      const runs = await resolveRunRefs(storeRoot, refs);
      // Loaded here: only this command reads the browser bundles.
      const { writeReport } = await import('@graft/report');
      const bytes = await writeReport(runs, storeRoot, argv.out);
      process.stderr.write(`report of ${runs.length} run${runs.length === 1 ? '' : 's'} written to ${argv.out} (${(bytes / 1024 / 1024).toFixed(2)} MB)\n`);
    },
  );
}
