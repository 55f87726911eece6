import { describe, expect, it } from 'vitest';
import { accuracyOf, classificationReport } from './evaluate.ts';

describe('classificationReport', () => {
  it('computes accuracy, per-class accuracy and the confusion matrix', () => {
    const labels = [0, 0, 1, 1, 1, 2];
    const predicted = [0, 1, 1, 1, 0, 2];
    const report = classificationReport(predicted, labels, 4);
    expect(report.accuracy).toBeCloseTo(4 / 6, 10);
    expect(report.count).toBe(6);
    expect(report.perClassAccuracy).toEqual([0.5, 2 / 3, 1, null]);
    expect(report.confusion).toEqual([
      [1, 1, 0, 0],
      [1, 2, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 0],
    ]);
  });

  it('rejects a label outside the class range and treats an empty set as accuracy 0', () => {
    expect(() => classificationReport([0], [5], 3)).toThrow(/label 5 at row 0/);
    expect(accuracyOf([], [])).toBe(0);
  });
});
