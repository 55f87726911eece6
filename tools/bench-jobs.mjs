// @ts-check
/**
 * `--jobs` benchmark (issue #12): the wall time of one sweep run serially (`--jobs 1`, today's
 * behaviour: one build at a time, curve evaluation on its worker thread) and in parallel
 * (`--jobs 2`: two build processes, evaluation inline), each on a fresh empty store, back to
 * back, with the ratio. The aim is parallel/serial <= 0.65 on a 2-core machine for a 2-seed
 * quick sweep, so by default:
 *
 *   node tools/bench-jobs.mjs        (npm run bench:jobs)
 *     = graft run all --config pipelines/mnist-transfer.quick.json --seeds 0,1 --jobs 1, then --jobs 2
 *
 * Options: --config FILE, --seeds 0,1, --jobs 1,2 (the settings timed, in order; the first is
 * the baseline of the ratios), --rounds N (repeat the pair, alternating the order, and report
 * medians), --set entry.param=value (passed to every run; e.g. a smaller slice to try the
 * script out), --keep (leave the stores in the temp dir). The load average before and after is
 * printed: on a shared machine the figures mean little without it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const GRAFT = join(ROOT, 'packages/cli/bin/graft.js');

/** @param {string} name @param {string} fallback */
function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = process.argv[i + 1];
  if (value === undefined || value.startsWith('--')) fail(`--${name} needs a value`);
  return /** @type {string} */ (value);
}
/** @param {string} message @returns {never} */
function fail(message) {
  process.stderr.write(`bench-jobs: ${message}\n`);
  process.exit(2);
}
const known = new Set(['--config', '--seeds', '--jobs', '--rounds', '--set', '--keep']);
for (let i = 2; i < process.argv.length; i++) {
  const arg = /** @type {string} */ (process.argv[i]);
  if (!known.has(arg)) fail(`unknown argument ${JSON.stringify(arg)}; options: ${[...known].join(', ')}`);
  if (arg !== '--keep') i++;
}

const config = option('config', 'pipelines/mnist-transfer.quick.json');
const seeds = option('seeds', '0,1');
const jobsList = option('jobs', '1,2').split(',').map((j) => j.trim());
const rounds = Number(option('rounds', '1'));
if (!Number.isInteger(rounds) || rounds < 1) fail('--rounds takes a whole number from 1 up');
if (jobsList.length < 2 || jobsList.some((j) => !/^\d+$/.test(j) || Number(j) < 1)) fail('--jobs takes at least two settings, e.g. 1,2');
const sets = process.argv.flatMap((arg, i) => (arg === '--set' ? ['--set', /** @type {string} */ (process.argv[i + 1])] : []));
const keep = process.argv.includes('--keep');

const work = mkdtempSync(join(tmpdir(), 'graft-bench-jobs-'));
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
process.stderr.write(`bench-jobs: ${config}, seeds ${seeds}, --jobs ${jobsList.join(' vs ')}, ${rounds} round(s), ${availableParallelism()} cores, load average ${load()}\n`);

/** @type {Map<string, number[]>} */
const times = new Map(jobsList.map((j) => [j, []]));
let n = 0;
for (let round = 0; round < rounds; round++) {
  // Alternate the order between rounds, so a load that drifts does not favour one setting.
  const order = round % 2 === 0 ? jobsList : [...jobsList].reverse();
  for (const jobs of order) {
    const store = join(work, `store-${n++}-jobs-${jobs}`);
    const args = [GRAFT, 'run', 'all', '--config', config, '--seeds', seeds, '--jobs', jobs, '--artifacts', store, '--json', ...sets];
    const started = performance.now();
    const result = spawnSync(process.execPath, args, { cwd: ROOT, env: { ...process.env, GRAFT_ARTIFACTS: '', GRAFT_REMOTE: '' }, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    const seconds = (performance.now() - started) / 1000;
    if (result.status !== 0) {
      process.stderr.write(result.stderr.split('\n').filter((l) => l.startsWith('graft:')).join('\n') + '\n');
      fail(`graft run --jobs ${jobs} exited ${result.status}; store kept at ${store}`);
    }
    // Every run on a fresh store must have built its own artifacts: a timed cache hit would be meaningless.
    const out = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}');
    const runs = out.runs ?? [out];
    const built = runs.flatMap((r) => Object.values(r.stages)).filter((s) => !(/** @type {{cached: boolean}} */ (s).cached)).length;
    process.stderr.write(`  --jobs ${jobs}: ${seconds.toFixed(1)} s (${runs.length} runs, ${built} builds; load average now ${load()})\n`);
    times.get(jobs)?.push(seconds);
    if (!keep) rmSync(store, { recursive: true, force: true });
  }
}

/** @param {number[]} xs */
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? /** @type {number} */ (s[(s.length - 1) / 2]) : (/** @type {number} */ (s[s.length / 2 - 1]) + /** @type {number} */ (s[s.length / 2])) / 2;
};
const timesOf = (/** @type {string} */ jobs) => /** @type {number[]} */ (times.get(jobs));
const base = median(timesOf(/** @type {string} */ (jobsList[0])));
const lines = [`graft run all --config ${config} --seeds ${seeds}, fresh store each time${rounds > 1 ? `, median of ${rounds}` : ''}:`];
for (const jobs of jobsList) {
  const t = median(timesOf(jobs));
  lines.push(`  --jobs ${jobs.padEnd(3)} ${t.toFixed(1).padStart(8)} s   ${(t / base).toFixed(2)}x of --jobs ${jobsList[0]}`);
}
lines.push(`load average at the end: ${load()} (${availableParallelism()} cores)`);
process.stdout.write(lines.join('\n') + '\n');
if (keep) process.stderr.write(`stores kept in ${work}\n`);
else rmSync(work, { recursive: true, force: true });
