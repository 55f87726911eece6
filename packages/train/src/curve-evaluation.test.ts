import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EVALUATION_ENV, chooseEvaluationMode } from './curve-evaluation.ts';

// The worker itself (same curve as in-thread, failures, termination) is tested in
// curve-evaluation.e2e.test.ts: it starts threads and trains.

// The unit tier sets GRAFT_EVALUATION=inline for the whole run (vitest.config.ts); these
// tests are about the variable itself, so each starts without it and puts it back after.
const outer = process.env[EVALUATION_ENV];
beforeEach(() => {
  delete process.env[EVALUATION_ENV];
});
afterEach(() => {
  if (outer === undefined) delete process.env[EVALUATION_ENV];
  else process.env[EVALUATION_ENV] = outer;
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
