import { describe, expect, it } from 'vitest';
import { runBench } from './bench.ts';
import type { BenchResult, StepTiming } from './bench.ts';
import { formatBenchTable } from './format.ts';

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
});
