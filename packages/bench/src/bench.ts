import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { GraftError, Rng, entryPointArgs, isGraftError, silentProgress } from '@graft/core';
import type { ProgressReporter } from '@graft/core';
import { readSplitData, readSplitInfo } from '@graft/data';
import type { ImageTable, Subset } from '@graft/data';
import { ingestParams, ingestStage } from '@graft/ingest';
import * as m from '@graft/model';
import type { LabelledImages, NetworkSpec } from '@graft/model';
import { splitParams, splitStage } from '@graft/split';
import * as train from '@graft/train';
import type { BatchPlan, Recipe } from '@graft/train';
import { resolveBenchOptions } from './options.ts';
import type { BenchOptions, ResolvedBenchOptions } from './options.ts';
import { summarise } from './stats.ts';
import type { Timing } from './stats.ts';

/** Step timings of one training configuration, milliseconds. */
export interface StepTiming {
  batchSize: number;
  /** Median over the timed steps: the headline figure. */
  msPerStep: number;
  meanMs: number;
  p90Ms: number;
  minMs: number;
  maxMs: number;
  /** msPerStep / batchSize. */
  msPerImage: number;
  /** Timed steps (warm-up excluded). */
  steps: number;
}

export interface BenchResult {
  /** What was asked for: 'auto', 'wasm', ... */
  requested: string;
  /** The tfjs backend that ran ('tensorflow' | 'wasm' | 'cpu'), or the request when it could not load. */
  backend: string;
  available: boolean;
  /** initBackend's explanation of the choice; for an unavailable backend, why not. */
  reason: string;
  /** Set when the backend loaded but a measurement failed; later figures are then null. */
  error: string | null;
  /** All layers train: the 9-class network, contiguous batches, loss + Adam as in phase one. */
  phaseOne: StepTiming | null;
  /** Head only, frozen base with dropout on, 10 classes, shuffled batches, as in phase two. */
  phaseTwo: StepTiming | null;
  /** Validation pass (accuracyOn, dropout off), median ms per 1,000 images. */
  evalMsPer1k: number | null;
  evalImages: number;
  /** Median wall time of the real ingest stage on full MNIST. */
  ingestMs: number | null;
  ingest: Timing | null;
  /** process.resourceUsage().maxRSS of the measuring process, MB. */
  peakRssMb: number | null;
  /** Phase-one step time per batch size. */
  batchScaling: StepTiming[];
  steps: number;
  warmupSteps: number;
  tfjsVersion: string;
  nodeVersion: string;
  /** The machine and how busy it was when the measurement started (1-minute load average). */
  machine: { cpus: number; cpuModel: string; loadAverage1m: number };
  /** The measurement ran in a child process of its own. */
  isolated: boolean;
  totalMs: number;
}

type Model = ReturnType<typeof m.buildNetwork>;

const PROGRESS_EVERY_MS = 5000;

/**
 * Measures every requested backend, in order. A backend that cannot load comes back with
 * `available: false`; with `isolate` each backend runs in a child process of its own.
 */
export async function runBench(options: BenchOptions = {}): Promise<BenchResult[]> {
  const resolved = resolveBenchOptions(options);
  const results: BenchResult[] = [];
  for (const request of resolved.backends) {
    results.push(resolved.isolate ? await benchInChild(request, resolved) : await benchBackend(request, resolved));
  }
  return results;
}

/** One backend, measured in this process. */
export async function benchBackend(request: string, options: BenchOptions | ResolvedBenchOptions = {}): Promise<BenchResult> {
  const o = resolveBenchOptions({ ...options, backends: [request] });
  const started = performance.now();
  const say = (line: string) => o.onProgress(`[${request}] ${line}`);
  const result = emptyResult(request, o, false);

  let info: m.BackendInfo;
  try {
    info = await m.initBackend(request);
  } catch (error) {
    if (!(isGraftError(error) && error.code === 'BACKEND_UNAVAILABLE')) throw error;
    say(`unavailable: ${error.message}`);
    return { ...result, reason: error.message, peakRssMb: peakRssMb(), totalMs: performance.now() - started };
  }
  Object.assign(result, { backend: info.backend, available: true, reason: info.reason, tfjsVersion: info.tfjsVersion });
  say(`backend ${info.backend} (${info.reason}); tfjs ${info.tfjsVersion}, node ${process.version}`);

  const dir = await mkdtemp(join(tmpdir(), 'graft-bench-'));
  let stage = 'ingest';
  try {
    const ingest = await timeIngest(o, dir, say);
    result.ingest = ingest.timing;
    result.ingestMs = ingest.timing.median;

    // The real split stage, as the pipeline runs it: bench never re-implements the split.
    stage = 'split';
    const split = await runSplit(dir, ingest.outDir);
    const phaseOneTrain = await readSubset(split, 'phase-one', 'train');
    const phaseTwoTrain = await readSubset(split, 'phase-two', 'train');
    const validation = await readSubset(split, 'phase-two', 'validation');
    if (o.evalImages > validation.length) {
      throw new GraftError('BENCH_EVAL_TOO_LARGE', `evalImages is ${o.evalImages} but the validation split holds ${validation.length} images; lower it.`);
    }

    stage = 'phase one';
    const one = await timeTraining('phase one', phaseOneTrain, o.batchSize, o.steps, o, say);
    result.phaseOne = one.timing;
    try {
      stage = 'evaluation';
      result.evalMsPer1k = timeEvaluation(one.model, one.spec, firstRows(validation, o.evalImages), o, say);
    } finally {
      one.model.dispose();
    }

    stage = 'phase two';
    const two = await timeTraining('phase two', phaseTwoTrain, o.batchSize, o.steps, o, say);
    two.model.dispose();
    result.phaseTwo = two.timing;

    stage = 'batch scaling';
    for (const batchSize of o.scalingBatchSizes) {
      if (batchSize === o.batchSize && o.scalingSteps === o.steps) {
        result.batchScaling.push(one.timing);
        continue;
      }
      const run = await timeTraining('phase one', phaseOneTrain, batchSize, o.scalingSteps, o, say);
      run.model.dispose();
      result.batchScaling.push(run.timing);
    }
  } catch (error) {
    const message = `${stage} failed on ${result.backend}: ${error instanceof Error ? error.message : String(error)}`;
    say(message);
    result.error = message;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  result.peakRssMb = peakRssMb();
  result.totalMs = performance.now() - started;
  say(`done in ${(result.totalMs / 1000).toFixed(1)} s, peak RSS ${result.peakRssMb.toFixed(0)} MB`);
  return result;
}

function emptyResult(request: string, o: ResolvedBenchOptions, isolated: boolean): BenchResult {
  return {
    requested: request,
    backend: request,
    available: false,
    reason: '',
    error: null,
    phaseOne: null,
    phaseTwo: null,
    evalMsPer1k: null,
    evalImages: o.evalImages,
    ingestMs: null,
    ingest: null,
    peakRssMb: null,
    batchScaling: [],
    steps: o.steps,
    warmupSteps: o.warmupSteps,
    tfjsVersion: m.tfjsVersion,
    nodeVersion: process.version,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', loadAverage1m: loadavg()[0] ?? 0 },
    isolated,
    totalMs: 0,
  };
}

function peakRssMb(): number {
  // maxRSS is in kilobytes.
  return round(process.resourceUsage().maxRSS / 1024, 1);
}

/** Microsecond resolution is plenty for figures that vary by percents between runs. */
function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------------------------
// Ingest

async function timeIngest(o: ResolvedBenchOptions, dir: string, say: (line: string) => void): Promise<{ timing: Timing; outDir: string }> {
  const params = ingestParams.parse({ source: o.source });
  const logger = pino({ level: 'silent' });
  const times: number[] = [];
  let outDir = '';
  for (let i = 0; i < o.ingestRepeats; i++) {
    // Earlier runs' output goes first: the disk holds one copy of MNIST at a time.
    if (outDir) await rm(outDir, { recursive: true, force: true });
    outDir = join(dir, `ingest-${i}`);
    const checkpointDir = join(dir, `ingest-${i}.ckpt`);
    await mkdir(outDir);
    await mkdir(checkpointDir);
    const t0 = performance.now();
    await ingestStage.run({ params, inputs: {}, key: `bench-ingest-${i}`, outDir, logger, progress: silentProgress, backend: 'cpu', checkpointDir, resume: false });
    times.push(performance.now() - t0);
    say(`ingest ${i + 1}/${o.ingestRepeats}: ${times[i]!.toFixed(0)} ms`);
  }
  const t = summarise(times);
  return { timing: { ...t, median: round(t.median), mean: round(t.mean), p90: round(t.p90), min: round(t.min), max: round(t.max) }, outDir };
}

/** The split stage (default holdout: the 9s) over the ingested data, into `dir/split`. */
async function runSplit(dir: string, ingestDir: string): Promise<string> {
  const outDir = join(dir, 'split');
  const checkpointDir = join(dir, 'split.ckpt');
  await mkdir(outDir);
  await mkdir(checkpointDir);
  const data = { key: 'bench-ingest', path: ingestDir, manifest: {} as never };
  const logger = pino({ level: 'silent' });
  await splitStage.run({ params: splitParams.parse({}), inputs: { data }, key: 'bench-split', outDir, logger, progress: silentProgress, backend: 'cpu', checkpointDir, resume: false });
  return outDir;
}

/** One subset's split with class-index labels, read as the training stages read it. */
export async function readSubset(splitDir: string, subset: Subset, part: 'train' | 'validation' | 'test'): Promise<SubsetData> {
  const info = await readSplitInfo(splitDir);
  const classMap = subset === 'phase-one' ? info.classMap : info.phaseTwoClassMap;
  const table = m.mapLabels(await readSplitData(splitDir, subset, part), classMap, `${subset} ${part}`);
  return { ...table, numClasses: Object.keys(classMap).length };
}

/** A split's table with class indices as labels, and how many classes the subset has. */
export type SubsetData = ImageTable & { numClasses: number };

function firstRows(data: LabelledImages, n: number): LabelledImages {
  const pixels = data.rows * data.cols;
  return {
    length: n,
    rows: data.rows,
    cols: data.cols,
    images: data.images.subarray(0, n * pixels),
    labels: Array.prototype.slice.call(data.labels, 0, n) as number[],
  };
}

// ---------------------------------------------------------------------------------
// Training steps: the stages' own trainLoop, timed through its progress callback.

/**
 * trainLoop reports progress once per step, after the loss is read back (so the step's
 * work is done), and evaluates only every `evalEvery` steps, which we set beyond the
 * last step; the gaps between callbacks are therefore the step times.
 */
function stepTimer(total: number, label: string, say: (line: string) => void): { reporter: ProgressReporter; times: number[] } {
  const times: number[] = [];
  let last = 0;
  let lastSaid = 0;
  return {
    times,
    reporter: {
      start() {
        last = performance.now();
        lastSaid = last;
      },
      update(current) {
        const now = performance.now();
        times.push(now - last);
        last = now;
        // By time, not step count: a cpu-backend step takes ~20 s, a wasm one ~0.1 s.
        if (now - lastSaid >= PROGRESS_EVERY_MS && current < total) {
          lastSaid = now;
          const left = ((total - current) * times[times.length - 1]!) / 1000;
          say(`${label}: step ${current}/${total}, last ${times[times.length - 1]!.toFixed(0)} ms, ~${left.toFixed(0)} s left`);
        }
      },
      stop() {},
    },
  };
}

/** The seed's phase-one batching (contiguous, file order), repeated if more steps are asked than one epoch holds. */
function contiguousSteps(n: number, batchSize: number, steps: number): BatchPlan {
  const epoch = train.contiguousPlan(n, batchSize).batches(1, new Rng(0));
  if (epoch.length === 0) throw new GraftError('BENCH_BATCH_TOO_LARGE', `batch size ${batchSize} is larger than the ${n}-row training set; lower it.`);
  const batches = Array.from({ length: steps }, (_, i) => epoch[i % epoch.length]!);
  return { batchesPerEpoch: steps, batches: () => batches };
}

/** Each measured phase runs its stage's recipe and the seed's hyper-parameters, from @graft/train. */
export const BENCH_PHASES = {
  'phase one': { recipe: train.ALL_LAYERS, defaults: train.PHASE_ONE_DEFAULTS },
  'phase two': { recipe: train.HEAD_ONLY, defaults: train.PHASE_TWO_DEFAULTS },
} as const satisfies Record<string, { recipe: Recipe; defaults: { learningRate: number; l2: number; keepProb: number } }>;
export type BenchPhase = keyof typeof BENCH_PHASES;

/**
 * `steps` training steps of `phase` on `data`, through the stages' own trainLoop with the
 * stage's recipe: a network built from seed 0 as the stage builds it, then the stage's
 * batching (phase one: contiguous batches in file order; phase two: shuffled). With the
 * phase-one stage's default params and seed 0 this is that stage's run, step for step
 * (bench.test.ts checks the weights bit for bit).
 */
export async function trainSteps(
  phase: BenchPhase,
  data: SubsetData,
  batchSize: number,
  steps: number,
  progress?: ProgressReporter,
): Promise<{ model: Model; spec: NetworkSpec }> {
  const { recipe, defaults } = BENCH_PHASES[phase];
  const spec: NetworkSpec = { ...m.SEED_NETWORK, rows: data.rows, cols: data.cols, numClasses: data.numClasses, dropoutRate: 1 - defaults.keepProb };
  // Only timings matter, so phase two's frozen base is freshly initialised rather than trained.
  const rng = new Rng(0);
  const model = m.buildNetwork(spec, rng);
  try {
    await train.trainLoop({
      ...recipe,
      model,
      train: data,
      validation: data,
      epochs: 1,
      plan: phase === 'phase one' ? contiguousSteps(data.length, batchSize, steps) : train.shuffledPlan(data.length, batchSize, steps),
      rng,
      learningRate: defaults.learningRate,
      l2: defaults.l2,
      keepProb: defaults.keepProb,
      // Beyond the last step: no curve point, so the gaps between progress calls are step times.
      evalEvery: steps + 1,
      ...(progress ? { progress } : {}),
    });
  } catch (error) {
    model.dispose();
    throw error;
  }
  return { model, spec };
}

async function timeTraining(
  phase: BenchPhase,
  data: SubsetData,
  batchSize: number,
  steps: number,
  o: ResolvedBenchOptions,
  say: (line: string) => void,
): Promise<{ timing: StepTiming; model: Model; spec: NetworkSpec }> {
  const total = o.warmupSteps + steps;
  const label = `${phase}, batch ${batchSize}`;
  const timer = stepTimer(total, label, say);
  say(`${label}: ${o.warmupSteps} warm-up + ${steps} timed steps`);
  const { model, spec } = await trainSteps(phase, data, batchSize, total, timer.reporter);
  const t = summarise(timer.times.slice(o.warmupSteps));
  const timing: StepTiming = {
    batchSize,
    msPerStep: round(t.median),
    meanMs: round(t.mean),
    p90Ms: round(t.p90),
    minMs: round(t.min),
    maxMs: round(t.max),
    msPerImage: round(t.median / batchSize, 4),
    steps: t.count,
  };
  say(`${label}: median ${timing.msPerStep.toFixed(1)} ms/step (mean ${timing.meanMs.toFixed(1)}, p90 ${timing.p90Ms.toFixed(1)})`);
  return { timing, model, spec };
}

// ---------------------------------------------------------------------------------
// Evaluation: accuracyOn, what trainLoop calls for every validation point.

function timeEvaluation(model: Model, spec: NetworkSpec, data: LabelledImages, o: ResolvedBenchOptions, say: (line: string) => void): number {
  const vars = m.networkVariables(model);
  m.accuracyOn(vars, spec, firstRows(data, Math.min(data.length, m.EVAL_BATCH_SIZE)));
  const perThousand: number[] = [];
  for (let i = 0; i < o.evalRepeats; i++) {
    const t0 = performance.now();
    m.accuracyOn(vars, spec, data);
    perThousand.push(((performance.now() - t0) * 1000) / data.length);
  }
  const msPer1k = round(summarise(perThousand).median);
  say(`validation pass: ${msPer1k.toFixed(0)} ms per 1,000 images (${data.length} images x ${o.evalRepeats})`);
  return msPer1k;
}

// ---------------------------------------------------------------------------------
// Isolation: one child process per backend.

async function benchInChild(request: string, o: ResolvedBenchOptions): Promise<BenchResult> {
  const { onProgress, ...plain } = o;
  const payload = JSON.stringify({ ...plain, backends: [request], isolate: false });
  const child = spawn(process.execPath, [...entryPointArgs(import.meta.url, 'child'), payload], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderrTail = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  // Progress lines are passed through; the tail is kept to explain a crash.
  let partial = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-2000);
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (line.startsWith(CHILD_PROGRESS)) onProgress(line.slice(CHILD_PROGRESS.length));
  });
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve({ code: c, signal: s }));
  });
  const last = stdout.trim().split('\n').pop() ?? '';
  if (code === 0 && last.startsWith('{')) return { ...(JSON.parse(last) as BenchResult), isolated: true };
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  const detail = stderrTail.split('\n').filter((l) => l && !l.startsWith(CHILD_PROGRESS)).slice(-3).join(' | ');
  const message = `the benchmark process for '${request}' ${how}${detail ? `: ${detail}` : ''}`;
  onProgress(`[${request}] ${message}`);
  return { ...emptyResult(request, o, true), reason: message, error: message };
}

/** Marks progress lines on the child's stderr, so stray output (warnings) is not taken for progress. */
export const CHILD_PROGRESS = 'graft-bench-progress ';
