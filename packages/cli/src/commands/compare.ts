import { UsageError } from '@graft/core';
import type { Argv } from 'yargs';
import { storeRoot, type GlobalOptions } from '../options.ts';
import { CLI_ERROR_CODES } from '../error-codes.ts';

/** `graft runs ls` and `graft compare <run> <run>...` (anchors: dvc exp show, dvc metrics diff, dvc plots diff). */
export function registerCompareCommands(cli: Argv<GlobalOptions>): void {
  cli.command('runs', 'List recorded runs', (y) =>
    y
      .command(
        'ls',
        'List runs, newest first',
        (a) => a.option('format', { choices: ['table', 'json'] as const, default: 'table' as const }).option('json', { type: 'boolean', default: false }),
        async (argv) => {
          const [{ listRuns }, { formatRunList }] = await Promise.all([import('@graft/runs'), import('@graft/report')]);
          const runs = await listRuns(await storeRoot(argv));
          const format = argv.json ? 'json' : argv.format;
          // The table lists unreadable runs itself; JSON output keeps stdout parseable.
          if (format === 'json') for (const w of runs.warnings) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
          process.stdout.write(formatRunList(runs, format) + '\n');
        },
      )
      .demandCommand(1, 'Name a runs subcommand: ls.'),
  );
  cli.command(
    'compare <runs..>',
    'Compare runs: differing params, shared artifacts, metrics with deltas, curves',
    (y) =>
      y
        .positional('runs', { type: 'string', array: true, demandOption: true, describe: 'Run ids, unique prefixes, latest, latest~N' })
        .option('format', { choices: ['table', 'markdown', 'json'] as const, default: 'table' as const })
        .option('all', { type: 'boolean', default: false, describe: 'Also list metrics that are equal in every run and come from shared artifacts' })
        .option('plot', { type: 'string', describe: 'Also draw validation-accuracy curves to this .svg or .png file' })
        .example('$0 compare latest latest~1 --plot curves.png', 'What changed between the last two runs'),
    async (argv) => {
      const refs = argv.runs as string[];
      if (refs.length < 1) throw new UsageError(CLI_ERROR_CODES.badArguments, 'Name at least one run (e.g. graft compare latest latest~1).');
      const [{ resolveRunRefs }, { compareRuns, formatComparison, plotCurves }] = await Promise.all([import('@graft/runs'), import('@graft/report')]);
      const runs = await resolveRunRefs(await storeRoot(argv), refs);
      process.stdout.write(formatComparison(compareRuns(runs), argv.format, { all: argv.all }) + '\n');
      if (argv.plot) {
        await plotCurves(runs, argv.plot);
        process.stderr.write(`curves written to ${argv.plot}\n`);
      }
    },
  );
}
