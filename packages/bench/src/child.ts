/**
 * One backend's measurement in a process of its own (runBench with `isolate`): options as
 * JSON in argv[2], progress on stderr, the BenchResult as the last line of stdout.
 */
import { CHILD_PROGRESS, benchBackend } from './bench.ts';
import type { ResolvedBenchOptions } from './options.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as Omit<ResolvedBenchOptions, 'onProgress'>;
const request = options.backends[0] ?? 'auto';
const result = await benchBackend(request, { ...options, onProgress: (line) => process.stderr.write(`${CHILD_PROGRESS}${line}\n`) });
process.stdout.write(`${JSON.stringify(result)}\n`);
