import { UsageError } from '@graft/core';
import type { Argv } from 'yargs';
import { lastValue, type GlobalOptions } from '../options.ts';
import { CLI_ERROR_CODES } from '../error-codes.ts';

function positiveIntList(text: string, flag: string): number[] {
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const bad = parts.filter((p) => !/^\d+$/.test(p) || Number(p) < 1);
  if (parts.length === 0 || bad.length > 0) {
    throw new UsageError(CLI_ERROR_CODES.badArguments, `--${flag} takes comma-separated positive integers, e.g. 50,100,200; got '${text}'.`);
  }
  return parts.map(Number);
}

/** `graft bench`: training-step, evaluation and ingest timings of the real network on real MNIST. */
export function registerBenchCommand(cli: Argv<GlobalOptions>): void {
  cli.command(
    'bench',
    'Time training steps, validation passes and ingest on real MNIST, per compute backend',
    (y) =>
      y
        .option('backend', {
          type: 'string',
          array: true,
          default: ['auto'],
          describe: 'Backend(s) to measure: auto|tensorflow|wasm|cpu; a comma list or a repeated flag. Each extra backend runs in a process of its own',
        })
        .option('steps', { type: 'number', coerce: lastValue<number>, default: 50, describe: 'Timed training steps per measurement, after warm-up' })
        .option('warmup', { type: 'number', coerce: lastValue<number>, default: 3, describe: 'Untimed warm-up steps before each measurement' })
        .option('batch-sizes', { type: 'string', coerce: lastValue<string>, default: '50,100,200', describe: 'Phase-one batch sizes for the scaling rows' })
        .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object per backend, one per line, at the end of stdout' })
        .option('against-torch', {
          type: 'boolean',
          default: false,
          describe: 'Time graft and the PyTorch reference in turns (A B per round and phase, same batches): each side\'s median ms/step and the ratio with the IQR of per-round ratios. Needs python3-torch',
        })
        .option('rounds', { type: 'number', coerce: lastValue<number>, default: 7, describe: 'With --against-torch: rounds of A B per phase' })
        .option('reference', { type: 'string', coerce: lastValue<string>, describe: 'With --against-torch: the reference script (default: GRAFT_TORCH_REFERENCE, else ../shared/bench/seed_reference.py)' })
        .option('python', { type: 'string', coerce: lastValue<string>, describe: 'With --against-torch: the interpreter that has torch (default /usr/bin/python3)' })
        .example('$0 bench', 'The auto-selected backend, 50 steps (about a minute on wasm)')
        .example('$0 bench --against-torch --steps 30', 'graft vs the PyTorch reference, 7 paired rounds per phase')
        .example('$0 bench --backend wasm,cpu --steps 5 --json', 'Two backends, each in its own process, as JSON lines'),
    async (argv) => {
      if (argv['against-torch']) {
        const { formatPaired, parseBackendList, runAgainstTorch } = await import('@graft/bench');
        const backends = parseBackendList(argv.backend);
        if (backends.length !== 1) throw new UsageError(CLI_ERROR_CODES.badArguments, `--against-torch measures one backend; got --backend ${backends.join(',')}. Name one.`);
        const result = await runAgainstTorch({
          backend: backends[0],
          rounds: argv.rounds,
          steps: argv.steps,
          warmup: argv.warmup,
          reference: argv.reference,
          python: argv.python,
          onProgress: (line) => process.stderr.write(`graft bench: ${line}\n`),
        });
        process.stdout.write(argv.json ? `${JSON.stringify(result)}\n` : formatPaired(result));
        return;
      }
      const scalingBatchSizes = positiveIntList(argv['batch-sizes'], 'batch-sizes');
      // Loads tfjs: only now, so the rest of the CLI stays fast.
      const { formatBenchTable, runBench } = await import('@graft/bench');
      const results = await runBench({
        backends: argv.backend,
        steps: argv.steps,
        warmupSteps: argv.warmup,
        scalingBatchSizes,
        onProgress: (line) => process.stderr.write(`graft bench: ${line}\n`),
      });
      if (argv.json) {
        process.stdout.write(results.map((r) => JSON.stringify(r)).join('\n') + '\n');
      } else {
        process.stdout.write(formatBenchTable(results));
      }
      // An unavailable backend is information (error null); a failed or crashed measurement is a failure.
      if (results.some((r) => r.error !== null)) process.exitCode = 1;
    },
  );
}
