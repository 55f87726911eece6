// @ts-check
/**
 * Before/after wall time of a whole `graft run all` on the same commit (issue #14): a speed
 * change that keeps a switch back to the old path (e.g. GRAFT_BASE_CACHE=off, the frozen
 * base's caches in phase two) is measured by running the pipeline on fresh stores with the
 * switch set ("before") and unset ("after"), back to back, alternating which goes first in
 * each round so a machine that drifts does not favour one side. It prints each run's wall and
 * CPU time and stage durations, the after/before ratio (per round and median), and whether
 * the two stores hold the same artifacts: same keys, every file byte-identical (weights.bin
 * included) except the wall-clock fields of metrics.json (msPerStep, durationMs) and the
 * manifest (createdAt, duration, producer).
 *
 *   node tools/bench-switch.mjs [--config pipelines/mnist-transfer.quick.json] [--rounds 1]
 *                               [--off GRAFT_BASE_CACHE=off]... [--set entry.param=value]... [--keep]
 *
 * `--set` goes to `graft run` as it is (e.g. a longer phase two on the quick config:
 * `--set phase-two.epochs=3 --set phase-two.batchesPerEpoch=550`).
 *
 * Exits 1 when the artifacts differ. The quick config takes a few minutes a pair; the
 * reference config (pipelines/mnist-transfer.json) tens of minutes a run. The load average
 * is printed: on a shared machine, quote it with the figures.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const GRAFT = join(ROOT, 'packages/cli/bin/graft.js');

/** @param {string} name @param {string} fallback */
function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const config = arg('--config', 'pipelines/mnist-transfer.quick.json');
const rounds = Number(arg('--rounds', '1'));
const offPairs = process.argv.flatMap((a, i) => (a === '--off' ? [process.argv[i + 1]] : []));
const off = Object.fromEntries((offPairs.length ? offPairs : ['GRAFT_BASE_CACHE=off']).map((pair) => {
  const eq = pair.indexOf('=');
  if (eq < 1) {
    process.stderr.write(`bench-switch: --off takes NAME=VALUE, got '${pair}'\n`);
    process.exit(2);
  }
  return [pair.slice(0, eq), pair.slice(eq + 1)];
}));
if (!Number.isInteger(rounds) || rounds < 1) {
  process.stderr.write(`bench-switch: --rounds must be a whole number ≥ 1\n`);
  process.exit(2);
}
if (!existsSync(resolve(ROOT, config))) {
  process.stderr.write(`bench-switch: no config at ${config}\n`);
  process.exit(2);
}
const keep = process.argv.includes('--keep');
const sets = process.argv.flatMap((a, i) => (a === '--set' ? ['--set', process.argv[i + 1]] : []));
const work = mkdtempSync(join(tmpdir(), 'graft-bench-switch-'));
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

/** The "after" env is the caller's without the switch variables, so a stray one cannot leak into it. */
const baseEnv = { ...process.env };
for (const name of Object.keys(off)) delete baseEnv[name];

// Builds the CLI bundle if a source changed, so no timed run pays for it.
spawnSync(process.execPath, [GRAFT, '--help'], { cwd: ROOT, stdio: 'ignore' });

/**
 * @param {'before' | 'after'} side
 * @param {number} round
 */
function runOnce(side, round) {
  const store = join(work, `${side}-${round}`);
  const env = side === 'before' ? { ...baseEnv, ...off } : baseEnv;
  const cpuFile = join(work, `${side}-${round}.cpu`);
  const argv = [process.execPath, GRAFT, 'run', 'all', '-c', config, '--artifacts', store, ...sets];
  const full = TIME ? [TIME, '-f', '%U %S %M', '-o', cpuFile, ...argv] : argv;
  const t0 = performance.now();
  const result = spawnSync(full[0], full.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const wallS = (performance.now() - t0) / 1000;
  if (result.status !== 0) throw new Error(`${side} run failed (exit ${result.status}):\n${result.stderr}`);
  // GNU time: user and system seconds of the run and its children, then the peak RSS (KiB) of the largest.
  const timed = TIME ? readFileSync(cpuFile, 'utf8').trim().split(/\s+/).slice(-3).map(Number) : null;
  const cpuS = timed ? timed[0] + timed[1] : null;
  const peakMb = timed ? timed[2] / 1024 : null;
  const runsDir = join(store, 'runs');
  const runJson = JSON.parse(readFileSync(join(runsDir, readdirSync(runsDir)[0], 'run.json'), 'utf8'));
  /** @type {Record<string, { durationMs: number; msPerStep?: number }>} */
  const stages = {};
  for (const [name, s] of Object.entries(runJson.stages)) stages[name] = { durationMs: s.durationMs, msPerStep: s.metrics?.msPerStep };
  return { side, round, store, wallS, cpuS, peakMb, stages };
}

/** Every file of every artifact, path relative to the store (runs, temp and lock dirs left out). */
function artifactFiles(store) {
  /** @type {string[]} */
  const out = [];
  for (const stage of readdirSync(store)) {
    if (stage.startsWith('.') || stage === 'runs') continue;
    const walk = (dir) => {
      for (const entry of readdirSync(dir)) {
        const path = join(dir, entry);
        if (statSync(path).isDirectory()) walk(path);
        else out.push(relative(store, path));
      }
    };
    if (statSync(join(store, stage)).isDirectory()) walk(join(store, stage));
  }
  return out.sort();
}

const WALL_CLOCK = new Set(['msPerStep', 'durationMs', 'createdAt', 'duration', 'producer', 'digest']);
/** JSON without wall-clock fields, at any depth. */
function withoutWallClock(value) {
  if (Array.isArray(value)) return value.map(withoutWallClock);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([k]) => !WALL_CLOCK.has(k)).map(([k, v]) => [k, withoutWallClock(v)]));
  }
  return value;
}

function compareStores(a, b) {
  const filesA = artifactFiles(a);
  const filesB = artifactFiles(b);
  const problems = [];
  if (JSON.stringify(filesA) !== JSON.stringify(filesB)) problems.push('different artifact keys or file lists');
  const weights = [];
  for (const file of filesA.filter((f) => filesB.includes(f))) {
    const x = readFileSync(join(a, file));
    const y = readFileSync(join(b, file));
    const name = file.split('/').pop();
    let same;
    if (name === 'metrics.json' || name === 'manifest.json') {
      // The manifest lists every file's sha256 (so a differing file shows here too), but
      // metrics.json's own hash changes with its wall-clock fields: that one is compared above.
      const comparable = (buf) => {
        const json = withoutWallClock(JSON.parse(buf.toString('utf8')));
        if (name === 'manifest.json' && Array.isArray(json.files)) {
          json.files = json.files.map((f) => (f.path === 'metrics.json' ? { path: f.path } : f));
        }
        return JSON.stringify(json);
      };
      same = comparable(x) === comparable(y);
    } else {
      same = x.equals(y);
    }
    if (name === 'weights.bin') weights.push(`${file.split('/')[0]} ${same ? 'identical' : 'DIFFERENT'}`);
    if (!same) problems.push(`${file} differs`);
  }
  return { problems, weights, files: filesA.length };
}

process.stdout.write(
  `bench-switch: ${config}${sets.length ? ` ${sets.join(' ')}` : ''}, ${rounds} round(s); before = ${Object.entries(off).map(([k, v]) => `${k}=${v}`).join(' ')}, after = unset; node ${process.version}; load average ${load()}\n`,
);
const results = [];
for (let round = 1; round <= rounds; round++) {
  const order = round % 2 === 1 ? ['before', 'after'] : ['after', 'before'];
  for (const side of order) {
    const r = runOnce(/** @type {'before' | 'after'} */ (side), round);
    results.push(r);
    const stages = Object.entries(r.stages)
      .map(([n, s]) => `${n} ${(s.durationMs / 1000).toFixed(1)} s${s.msPerStep ? ` (${s.msPerStep.toFixed(1)} ms/step)` : ''}`)
      .join(', ');
    process.stdout.write(`  round ${round} ${side.padEnd(6)} wall ${r.wallS.toFixed(1)} s${r.cpuS === null ? '' : `, CPU ${r.cpuS.toFixed(1)} s, peak RSS ${r.peakMb.toFixed(0)} MB`}; ${stages}; load ${load()}\n`);
  }
}

const median = (xs) => {
  const s = [...xs].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ratios = [];
for (let round = 1; round <= rounds; round++) {
  const before = results.find((r) => r.round === round && r.side === 'before');
  const after = results.find((r) => r.round === round && r.side === 'after');
  ratios.push(after.wallS / before.wallS);
}
const wall = (side) => median(results.filter((r) => r.side === side).map((r) => r.wallS));
process.stdout.write(
  `wall: before ${wall('before').toFixed(1)} s, after ${wall('after').toFixed(1)} s (medians); after/before ${median(ratios).toFixed(3)} (rounds: ${ratios.map((x) => x.toFixed(3)).join(', ')})\n`,
);

let differ = false;
for (let round = 1; round <= rounds; round++) {
  const before = results.find((r) => r.round === round && r.side === 'before');
  const after = results.find((r) => r.round === round && r.side === 'after');
  const { problems, weights, files } = compareStores(before.store, after.store);
  differ ||= problems.length > 0;
  process.stdout.write(
    `artifacts, round ${round}: ${problems.length === 0 ? `identical (${files} files; metrics and manifests without wall-clock fields)` : `DIFFER: ${problems.join('; ')}`}; weights.bin: ${weights.join(', ')}\n`,
  );
}
if (keep) process.stdout.write(`stores kept in ${work}\n`);
else rmSync(work, { recursive: true, force: true });
process.exitCode = differ ? 1 : 0;
