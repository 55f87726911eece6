import { afterEach, describe, expect, it } from 'vitest';
import { EVALUATION_ENV, chooseEvaluationMode } from './curve-evaluation.ts';

// The worker itself (same curve as in-thread, failures, termination) is tested in
// curve-evaluation.e2e.test.ts: it starts threads and trains.

afterEach(() => {
  delete process.env[EVALUATION_ENV];
});

describe('chooseEvaluationMode', () => {
  it('uses the worker with a second core on wasm and cpu, inline otherwise', () => {
    expect(chooseEvaluationMode('auto', 'wasm', 2)).toBe('worker');
    expect(chooseEvaluationMode('auto', 'cpu', 8)).toBe('worker');
    expect(chooseEvaluationMode('auto', 'wasm', 1)).toBe('inline');
    expect(chooseEvaluationMode('auto', 'tensorflow', 8)).toBe('inline');
    expect(chooseEvaluationMode('inline', 'wasm', 8)).toBe('inline');
    expect(chooseEvaluationMode('worker', 'wasm', 1)).toBe('worker');
  });

  it(`lets ${EVALUATION_ENV} override auto, and rejects a value it does not know`, () => {
    process.env[EVALUATION_ENV] = 'inline';
    expect(chooseEvaluationMode('auto', 'wasm', 8)).toBe('inline');
    process.env[EVALUATION_ENV] = 'worker';
    expect(chooseEvaluationMode('auto', 'wasm', 1)).toBe('worker');
    process.env[EVALUATION_ENV] = 'gpu';
    expect(() => chooseEvaluationMode('auto', 'wasm', 8)).toThrow(expect.objectContaining({ code: 'BAD_ENVIRONMENT', exitCode: 2 }));
  });
});
