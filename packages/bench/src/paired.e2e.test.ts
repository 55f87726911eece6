import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { checkTorch, defaultPython, defaultReference, runAgainstTorch } from './paired.ts';

// Needs python3-torch (apt) and the reference script; without them the test is skipped and says why.
const reference = defaultReference();
const missing = !existsSync(reference)
  ? `the PyTorch reference ${reference} is absent (set GRAFT_TORCH_REFERENCE)`
  : await checkTorch(defaultPython()).then(
      () => null,
      (error: Error) => error.message,
    );

describe('graft bench --against-torch (real graft and PyTorch processes)', () => {
  it.skipIf(missing !== null)(
    missing ? `skipped: ${missing}` : 'times both sides on the same batches, round by round, and closes the PyTorch process',
    async () => {
      const lines: string[] = [];
      const result = await runAgainstTorch({ rounds: 2, steps: 2, warmup: 1, reference, onProgress: (line) => lines.push(line) });
      expect(result.torch).toMatch(/^torch \S+ \(1 thread, OPENBLAS_NUM_THREADS=1\)/);
      expect(result.graft).toMatch(/^graft /);
      for (const phase of [result.phaseOne, result.phaseTwo, result.phaseTwoWarm]) {
        expect(phase.rounds).toHaveLength(2);
        for (const r of phase.rounds) {
          expect(r.graftMs).toBeGreaterThan(0);
          expect(r.torchMs).toBeGreaterThan(0);
          expect(r.ratio).toBeCloseTo(r.graftMs / r.torchMs, 10);
          expect(r.graftCpuMs).toBeGreaterThan(0);
          expect(r.torchCpuMs).toBeGreaterThan(0);
        }
        expect(phase.ratio.q1).toBeLessThanOrEqual(phase.ratio.median);
        expect(phase.ratio.median).toBeLessThanOrEqual(phase.ratio.q3);
      }
      expect(lines.filter((l) => l.startsWith('round '))).toHaveLength(6);
    },
  );
});
