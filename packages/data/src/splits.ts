/** The three splits every dataset artifact holds, one Arrow file each. */
export const SPLIT_NAMES = ['train', 'validation', 'test'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

/** Count of each label value present, keyed by the label as a string (JSON object keys). */
export function countLabels(labels: Uint8Array): Record<string, number> {
  const counts = new Uint32Array(256);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  const out: Record<string, number> = {};
  // Integer-like keys enumerate in ascending numeric order, so the JSON comes out sorted.
  counts.forEach((count, label) => {
    if (count > 0) out[String(label)] = count;
  });
  return out;
}
