import { createRequire } from 'node:module';
import { UsageError } from '@graft/core';
import { describe, expect, it } from 'vitest';
import { benchBackend } from './bench.ts';
import { formatBenchTable } from './format.ts';
import { parseBackendList, resolveBenchOptions } from './options.ts';
import { median, percentile, summarise } from './stats.ts';

// The in-process, fast part; bench.e2e.test.ts measures real MNIST (in process and in a child).
const tiny = { steps: 2, warmupSteps: 1, batchSize: 20, scalingBatchSizes: [10, 20], evalImages: 200, evalRepeats: 1, ingestRepeats: 1 };

describe('benchBackend', () => {
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
