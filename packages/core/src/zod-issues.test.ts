import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { formatJsonPath, formatZodIssues, zodProblems } from './zod-issues.ts';

describe('zod issue formatting', () => {
  it('writes JSON paths with dots for keys and brackets for indices', () => {
    expect(formatJsonPath(['entries', 'split', 'holdout', 0])).toBe('entries.split.holdout[0]');
    expect(formatJsonPath([0, 'a'])).toBe('[0].a');
    expect(formatJsonPath(['holdout', 1], 'entries.split.params')).toBe('entries.split.params.holdout[1]');
    expect(formatJsonPath([], 'prefix')).toBe('prefix');
  });

  it('turns every issue into a problem with its path, naming unknown keys', () => {
    const result = z.strictObject({ epochs: z.number().int().min(1), holdout: z.array(z.number()) }).safeParse({ epochs: 0, holdout: [1, 'x'], epoch: 3 });
    expect(result.success).toBe(false);
    expect(zodProblems(result.error!, 'entries.p.params')).toEqual([
      { path: 'entries.p.params.epochs', message: expect.stringMatching(/>=\s*1/) },
      { path: 'entries.p.params.holdout[1]', message: expect.stringMatching(/expected number/) },
      { path: 'entries.p.params', message: 'unknown key "epoch"' },
    ]);
  });

  it('formats root problems without a path', () => {
    const result = z.object({ a: z.string() }).safeParse([]);
    expect(formatZodIssues(result.error!)).toEqual([expect.stringMatching(/^Invalid input: expected object, received array$/)]);
  });
});
