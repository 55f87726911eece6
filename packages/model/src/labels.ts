import { GraftError } from '@graft/core';
import { MODEL_ERROR_CODES } from './error-codes.ts';

/**
 * A copy of `table` whose labels are class indices: `classMap` maps an original label
 * (as a string, the split.json form) to its index. A label missing from the map means
 * the data and the map disagree, which would train on garbage: an error naming both.
 */
export function mapLabels<T extends { labels: Uint8Array; length: number }>(
  table: T,
  classMap: Readonly<Record<string, number>>,
  what: string,
): T {
  const lookup = new Int16Array(256).fill(-1);
  for (const [label, index] of Object.entries(classMap)) lookup[Number(label)] = index;
  const labels = new Uint8Array(table.length);
  for (let i = 0; i < table.length; i++) {
    const mapped = lookup[table.labels[i]!]!;
    if (mapped < 0) {
      throw new GraftError(
        MODEL_ERROR_CODES.labelNotInClassMap,
        `${what} has label ${table.labels[i]} (row ${i}), which the class map ${JSON.stringify(classMap)} does not contain; ` +
          'the split artifact is inconsistent: rebuild it.',
      );
    }
    labels[i] = mapped;
  }
  return { ...table, labels };
}
