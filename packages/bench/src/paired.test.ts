import { describe, expect, it } from 'vitest';
import { TORCH_INSTALL_HINT, checkTorch, formatPaired, quantile, roundBatches, runPaired, spread } from './paired.ts';
import type { PairedBatch, Phase, StepRunner } from './paired.ts';

/**
 * A runner whose step wall time is a function of the phase, the batch and the step (CPU
 * time: `cpuShare` of it), and which logs its calls.
 */
function fakeRunner(label: string, calls: string[], stepMs: (phase: Phase, batch: PairedBatch, i: number) => number, seen?: PairedBatch[][], cpuShare = 1): StepRunner {
  return {
    label,
    async run(phase, batches) {
      calls.push(`${label}:${phase}`);
      seen?.push(batches.map((b) => [...b]));
      const wallMs = batches.map((b, i) => stepMs(phase, b, i));
      return { wallMs, cpuMs: wallMs.map((ms) => ms * cpuShare) };
    },
    async close() {},
  };
}

const rows = { rowsPhaseOne: 1000, rowsPhaseTwo: 1200 };

describe('runPaired', () => {
  it('interleaves A B per phase and round, on the same batches, and drops the warm-up steps', async () => {
    const calls: string[] = [];
    const graftSeen: PairedBatch[][] = [];
    const torchSeen: PairedBatch[][] = [];
    // Warm-up steps take 1000 ms: if they were counted the medians would move.
    // graft's CPU time is half its wall time, torch's all of it: the CPU ratios are half the wall ones.
    const graft = fakeRunner('graft', calls, (phase, _b, i) => (i < 2 ? 1000 : phase === 'one' ? 30 : phase === 'two' ? 12 : 8), graftSeen, 0.5);
    const torch = fakeRunner('torch', calls, (phase, _b, i) => (i < 2 ? 1000 : phase === 'one' ? 20 : 16), torchSeen);
    const result = await runPaired(graft, torch, { ...rows, rounds: 3, steps: 5, warmup: 2, batchSize: 10 });
    expect(calls).toEqual(Array.from({ length: 3 }, () => ['graft:one', 'torch:one', 'graft:two', 'torch:two', 'graft:two-warm', 'torch:two-warm']).flat());
    expect(torchSeen).toEqual(graftSeen);
    expect(graftSeen.every((batches) => batches.length === 7)).toBe(true);
    expect(result.phaseOne).toMatchObject({ graftMs: 30, torchMs: 20, ratio: { median: 1.5, q1: 1.5, q3: 1.5, iqr: 0 } });
    expect(result.phaseOne).toMatchObject({ graftCpuMs: 15, torchCpuMs: 20, cpuRatio: { median: 0.75, iqr: 0 } });
    expect(result.phaseTwo).toMatchObject({ graftMs: 12, torchMs: 16, ratio: { median: 0.75, iqr: 0 } });
    expect(result.phaseTwoWarm).toMatchObject({ graftMs: 8, torchMs: 16, ratio: { median: 0.5, iqr: 0 } });
    expect(result.phaseOne.rounds).toHaveLength(3);
  });

  it('reports the median of per-round ratios and their interquartile range', async () => {
    // Graft's speed drifts by round (x1, x2, x3, x4, x5) and torch's drifts with it: every
    // round's ratio is 2 even though the sides' own medians move by 5x.
    let round = -1;
    const calls: string[] = [];
    const graft = fakeRunner('graft', calls, (phase, _b, i) => {
      if (phase === 'one' && i === 0) round++;
      return 20 * (round + 1);
    });
    const torch = fakeRunner('torch', calls, () => 10 * (round + 1));
    const steady = await runPaired(graft, torch, { ...rows, rounds: 5, steps: 3, warmup: 0 });
    expect(steady.phaseOne.ratio).toEqual({ median: 2, q1: 2, q3: 2, iqr: 0 });
    expect(steady.phaseOne.graftMs).toBe(60);

    // Round ratios 1, 2, 3, 4, 5 (torch steady): median 3, quartiles 2 and 4.
    round = -1;
    const varying = await runPaired(
      fakeRunner('graft', [], (phase, _b, i) => {
        if (phase === 'one' && i === 0) round++;
        return 10 * (round + 1);
      }),
      fakeRunner('torch', [], () => 10),
      { ...rows, rounds: 5, steps: 3, warmup: 0 },
    );
    expect(varying.phaseOne.ratio).toEqual({ median: 3, q1: 2, q3: 4, iqr: 2 });
    expect(formatPaired(varying)).toContain('3.00x   2.00-4.00x (IQR 2.00)');
  });

  it('fails with BENCH_RUNNER_FAILED when a side returns the wrong number of step times', async () => {
    const short: StepRunner = {
      label: 'torch',
      run: async (_p, batches) => ({ wallMs: batches.map(() => 1), cpuMs: batches.slice(1).map(() => 1) }),
      close: async () => {},
    };
    await expect(runPaired(fakeRunner('graft', [], () => 1), short, { ...rows, rounds: 1, steps: 2 })).rejects.toMatchObject({ code: 'BENCH_RUNNER_FAILED' });
  });

  it('rejects rounds or steps below 1 as bad options', async () => {
    const r = fakeRunner('x', [], () => 1);
    await expect(runPaired(r, r, { ...rows, rounds: 0 })).rejects.toMatchObject({ code: 'BENCH_OPTIONS_INVALID', exitCode: 2 });
    await expect(runPaired(r, r, { ...rows, steps: 1.5 })).rejects.toMatchObject({ code: 'BENCH_OPTIONS_INVALID' });
  });
});

describe('roundBatches', () => {
  it('phase one: the contiguous batches in file order, continuing round after round and wrapping', () => {
    expect(roundBatches('one', 0, 3, 100, 450, 0)).toEqual([[0, 100], [100, 200], [200, 300]]);
    expect(roundBatches('one', 1, 3, 100, 450, 0)).toEqual([[300, 400], [0, 100], [100, 200]]);
  });

  it('phase two: distinct rows within the set, the same for the same round and seed, new each round', () => {
    const a = roundBatches('two', 2, 4, 50, 300, 0) as number[][];
    expect(roundBatches('two', 2, 4, 50, 300, 0)).toEqual(a);
    expect(roundBatches('two', 3, 4, 50, 300, 0)).not.toEqual(a);
    for (const batch of a) {
      expect(new Set(batch).size).toBe(50);
      expect(batch.every((r) => Number.isInteger(r) && r >= 0 && r < 300)).toBe(true);
    }
  });
});

describe('quantile', () => {
  it('interpolates between order statistics as numpy does', () => {
    expect(quantile([4, 1, 3, 2], 0.25)).toBe(1.75);
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([7], 0.75)).toBe(7);
    expect(spread([1, 2, 3, 4, 5, 6, 7, 8, 9])).toEqual({ median: 5, q1: 3, q3: 7, iqr: 4 });
    expect(() => quantile([], 0.5)).toThrow(RangeError);
  });
});

describe('checkTorch', () => {
  it('says how to install PyTorch when the interpreter is missing or cannot import torch (exit 2)', async () => {
    await expect(checkTorch('/nonexistent/python3')).rejects.toMatchObject({
      code: 'TORCH_UNAVAILABLE',
      exitCode: 2,
      message: expect.stringContaining(TORCH_INSTALL_HINT),
    });
    // /bin/false runs and fails like an interpreter without torch.
    await expect(checkTorch('/bin/false')).rejects.toMatchObject({ code: 'TORCH_UNAVAILABLE', message: expect.stringContaining('cannot import torch') });
  });
});
