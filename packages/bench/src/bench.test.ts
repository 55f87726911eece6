import { createRequire } from 'node:module';
import { UsageError } from '@graft/core';
import { describe, expect, it } from 'vitest';
import { benchBackend, runBench } from './bench.ts';
import type { BenchResult, StepTiming } from './bench.ts';
import { formatBenchTable } from './format.ts';
import { parseBackendList, resolveBenchOptions } from './options.ts';
import { median, percentile, summarise } from './stats.ts';

// Real MNIST through the real ingest stage, but few steps, small batches and a short
// validation pass: it checks the plumbing and the report's shape, not speed.
const tiny = { steps: 2, warmupSteps: 1, batchSize: 20, scalingBatchSizes: [10, 20], evalImages: 200, evalRepeats: 1, ingestRepeats: 1 };

function expectPositive(x: unknown): void {
  expect(typeof x).toBe('number');
  expect(Number.isFinite(x)).toBe(true);
  expect(x as number).toBeGreaterThan(0);
}

function expectStepTiming(t: StepTiming | null, batchSize: number): void {
  expect(t).not.toBeNull();
  const s = t!;
  expect(s.batchSize).toBe(batchSize);
  expect(s.steps).toBe(tiny.steps);
  for (const x of [s.msPerStep, s.meanMs, s.p90Ms, s.minMs, s.maxMs, s.msPerImage]) expectPositive(x);
  expect(s.minMs).toBeLessThanOrEqual(s.msPerStep);
  expect(s.msPerStep).toBeLessThanOrEqual(s.p90Ms);
  expect(s.p90Ms).toBeLessThanOrEqual(s.maxMs);
  expect(s.msPerImage).toBeCloseTo(s.msPerStep / batchSize, 3);
}

function expectMeasured(r: BenchResult): void {
  expect(r).toMatchObject({ available: true, error: null, steps: tiny.steps, warmupSteps: tiny.warmupSteps, evalImages: tiny.evalImages, nodeVersion: process.version });
  expect(r.tfjsVersion).toMatch(/^4\./);
  expectStepTiming(r.phaseOne, tiny.batchSize);
  expectStepTiming(r.phaseTwo, tiny.batchSize);
  for (const x of [r.evalMsPer1k, r.ingestMs, r.peakRssMb]) expectPositive(x);
  expect(r.ingest?.count).toBe(tiny.ingestRepeats);
  expect(r.batchScaling.map((s) => s.batchSize)).toEqual(tiny.scalingBatchSizes);
  r.batchScaling.forEach((s) => expectStepTiming(s, s.batchSize));
  // One JSON line per backend is the --json contract.
  expect(JSON.parse(JSON.stringify(r))).toEqual(r);
}

describe('runBench', () => {
  it('measures the wasm backend on real MNIST and reports every figure', async () => {
    const progress: string[] = [];
    const [result, ...rest] = await runBench({ ...tiny, backends: ['wasm'], onProgress: (line) => progress.push(line) });
    expect(rest).toEqual([]);
    expect(result).toMatchObject({ requested: 'wasm', backend: 'wasm', isolated: false });
    expectMeasured(result!);
    expect(progress.some((line) => line.startsWith('[wasm] ingest 1/1'))).toBe(true);
    expect(progress.some((line) => line.includes('phase two, batch 20: median'))).toBe(true);

    const table = formatBenchTable([result!]);
    expect(table).toContain('phase one step, batch 20');
    expect(table).toContain(`${result!.phaseOne!.msPerStep.toFixed(1)} / `);
    expect(table).toContain('phase one step, batch 10 (per image)');
  });

  it('runs a backend in a child process of its own when isolated', async () => {
    const progress: string[] = [];
    const [result] = await runBench({ ...tiny, backends: ['wasm'], isolate: true, onProgress: (line) => progress.push(line) });
    expect(result!.isolated).toBe(true);
    expectMeasured(result!);
    expect(progress.some((line) => line.startsWith('[wasm] done in'))).toBe(true);
  });

  const tfjsNodeInstalled = (() => {
    try {
      createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(tfjsNodeInstalled)('reports a backend that cannot load as unavailable instead of failing', async () => {
    const result = await benchBackend('tensorflow', tiny);
    expect(result).toMatchObject({ requested: 'tensorflow', available: false, error: null, phaseOne: null, phaseTwo: null, evalMsPer1k: null, ingestMs: null });
    expect(result.reason).toContain('@tensorflow/tfjs-node');
    expect(formatBenchTable([result])).toContain('tensorflow: unavailable: ');
  });
});

describe('resolveBenchOptions', () => {
  it('fills defaults: the auto backend, 50 steps, batch 100, scaling 50/100/200', () => {
    const o = resolveBenchOptions();
    expect(o).toMatchObject({ backends: ['auto'], steps: 50, warmupSteps: 3, batchSize: 100, scalingBatchSizes: [50, 100, 200], scalingSteps: 50, evalImages: 5000, isolate: false });
    expect(resolveBenchOptions({ backends: ['wasm,cpu', 'cpu'] })).toMatchObject({ backends: ['wasm', 'cpu'], isolate: true });
  });

  it('lists every bad option in one UsageError', () => {
    let error: unknown;
    try {
      resolveBenchOptions({ backends: ['wasm', 'gpu'], steps: 0, warmupSteps: 1.5, scalingBatchSizes: [50, -1] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UsageError);
    const message = (error as UsageError).message;
    for (const part of ["unknown backend 'gpu'", 'steps must be', 'warmupSteps must be', 'scalingBatchSizes[1]']) expect(message).toContain(part);
  });

  it('splits comma lists and drops repeats and blanks', () => {
    expect(parseBackendList(['auto, wasm', 'wasm,,cpu'])).toEqual(['auto', 'wasm', 'cpu']);
  });
});

describe('stats', () => {
  it('median, nearest-rank p90 and the summary', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const ten = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    expect(percentile(ten, 90)).toBe(9);
    expect(percentile(ten, 100)).toBe(10);
    expect(percentile([5], 90)).toBe(5);
    expect(summarise([1, 2, 6])).toEqual({ median: 2, mean: 3, p90: 6, min: 1, max: 6, count: 3 });
    expect(() => median([])).toThrow(RangeError);
  });
});
