import { isGraftError, UsageError } from '@graft/core';
import yargs, { type Argv } from 'yargs';
import { registerArtifactCommands } from './commands/artifacts.ts';
import { registerBenchCommand } from './commands/bench.ts';
import { registerCompareCommands } from './commands/compare.ts';
import { registerQueueCommands } from './commands/queue.ts';
import { registerReportCommands, registerUiCommand } from './commands/report.ts';
import { registerRunCommand } from './commands/run.ts';
import { registerSchemaCommand } from './commands/schema.ts';
import { lastValue, type GlobalOptions } from './options.ts';
import { CLI_ERROR_CODES } from './error-codes.ts';

// Command modules import only yargs, @graft/core and types at the top; everything else
// (store, pipeline, runs, report, tfjs, arrow, zod, pino) loads inside the handler that
// needs it, so `graft --help` and a cached `graft run` stay fast. build.e2e.test.ts checks.
function addGlobalOptions<T>(argv: Argv<T>): Argv<T & GlobalOptions> {
  return argv
    .option('artifacts', { type: 'string', coerce: lastValue<string>, describe: 'Artifact store directory (default: $GRAFT_ARTIFACTS or ./artifacts)' })
    .option('verbose', { type: 'boolean', default: false, describe: 'Debug logs and error stacks' });
}

/**
 * Entry point of the `graft` binary; returns the exit code instead of exiting, so the
 * black-box CLI tests and the bin script share it. Exit codes: 0 ok, 1 failure, 2 bad
 * input (config, arguments, files).
 */
export async function main(args: string[]): Promise<number> {
  let exitCode = 0;
  const cli = addGlobalOptions(yargs(args))
    .scriptName('graft')
    .usage('$0 <command>\n\nTransfer learning on MNIST as a chain of versioned, cached pipeline stages.')
    .strict()
    .demandCommand(1, 'Name a command; see --help.')
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .help()
    .alias('h', 'help')
    .version(false)
    .fail((message, error) => {
      // yargs validation (unknown option, missing argument) is a usage error: exit 2.
      throw error ?? new UsageError(CLI_ERROR_CODES.badArguments, `${message}\nRun with --help for usage.`);
    });
  registerRunCommand(cli);
  registerArtifactCommands(cli);
  registerCompareCommands(cli);
  registerReportCommands(cli);
  registerUiCommand(cli);
  registerSchemaCommand(cli);
  registerBenchCommand(cli);
  registerQueueCommands(cli);
  try {
    await cli.parseAsync();
  } catch (error) {
    exitCode = reportError(error, args.includes('--verbose'));
  }
  return exitCode || (process.exitCode as number | undefined) || 0;
}

function reportError(error: unknown, verbose: boolean): number {
  if (isGraftError(error)) {
    // The code first: stable across versions, so users can search for it and scripts can match it.
    process.stderr.write(`graft: [${error.code}] ${error.message}\n`);
    if (verbose && error.cause) process.stderr.write(`caused by: ${(error.cause as Error)?.stack ?? String(error.cause)}\n`);
    return error.exitCode;
  }
  process.stderr.write(`graft: [UNEXPECTED] unexpected error: ${verbose ? ((error as Error)?.stack ?? String(error)) : error instanceof Error ? error.message : String(error)}\n`);
  if (!verbose) process.stderr.write('Run again with --verbose for the stack trace.\n');
  return 1;
}
