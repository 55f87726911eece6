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
    'Compare runs: differing params, shared artifacts, metrics with deltas, curves; or a sweep (sweep:<id>): mean ± std per variant',
    (y) =>
      y
        .positional('runs', { type: 'string', array: true, demandOption: true, describe: 'Run ids, unique prefixes, latest, latest~N; or sweep:<id> (a sweep id or prefix, as graft run and runs ls print it)' })
        .option('format', { choices: ['table', 'markdown', 'json'] as const, default: 'table' as const })
        .option('json', { type: 'boolean', default: false, describe: 'Same as --format json' })
        .option('all', { type: 'boolean', default: false, describe: 'Also list metrics that are equal in every run and come from shared artifacts' })
        .option('plot', { type: 'string', describe: 'Also draw validation-accuracy curves to this .svg or .png file' })
        .example('$0 compare latest latest~1 --plot curves.png', 'What changed between the last two runs')
        .example('$0 compare sweep:3fa1c2', 'One row per variant of a sweep, test metrics as mean ± std over its seeds'),
    async (argv) => {
      const refs = argv.runs as string[];
      if (refs.length < 1) throw new UsageError(CLI_ERROR_CODES.badArguments, 'Name at least one run (e.g. graft compare latest latest~1).');
      const format = argv.json ? 'json' : argv.format;
      const sweeps = refs.filter((ref) => ref.startsWith(SWEEP_PREFIX));
      if (sweeps.length > 0) {
        if (sweeps.length !== refs.length) {
          throw new UsageError(CLI_ERROR_CODES.badArguments, `Compare either runs or sweeps: ${refs.filter((r) => !r.startsWith(SWEEP_PREFIX)).join(', ')} ${refs.length - sweeps.length === 1 ? 'is a run' : 'are runs'}, ${sweeps.join(', ')} ${sweeps.length === 1 ? 'is a sweep' : 'are sweeps'}.`);
        }
        if (argv.plot) throw new UsageError(CLI_ERROR_CODES.badArguments, '--plot draws the curves of runs; compare the runs of a sweep by id for that (graft runs ls shows them).');
        const [{ listRuns, resolveSweepRef }, { compareSweep, formatSweepComparison }] = await Promise.all([import('@graft/runs'), import('@graft/report')]);
        const root = await storeRoot(argv);
        const comparisons = [];
        for (const ref of sweeps) {
          const id = ref.slice(SWEEP_PREFIX.length);
          if (id === '') throw new UsageError(CLI_ERROR_CODES.badArguments, `"${ref}" names no sweep: write sweep:<id>, e.g. sweep:3fa1c2 (graft runs ls shows the ids).`);
          comparisons.push(compareSweep(await resolveSweepRef(root, id), await listRuns(root)));
        }
        process.stdout.write(
          (format === 'json' ? JSON.stringify(comparisons.length === 1 ? comparisons[0] : comparisons, null, 2) : comparisons.map((c) => formatSweepComparison(c, format)).join('\n\n')) + '\n',
        );
        return;
      }
      const [{ resolveRunRefs }, { compareRuns, formatComparison, plotCurves }] = await Promise.all([import('@graft/runs'), import('@graft/report')]);
      const runs = await resolveRunRefs(await storeRoot(argv), refs);
      process.stdout.write(formatComparison(compareRuns(runs), format, { all: argv.all }) + '\n');
      if (argv.plot) {
        await plotCurves(runs, argv.plot);
        process.stderr.write(`curves written to ${argv.plot}\n`);
      }
    },
  );
}

/** `graft compare sweep:<id>` names a sweep instead of runs (run ids never contain ':'). */
const SWEEP_PREFIX = 'sweep:';
