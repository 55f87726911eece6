import { Rng } from '@graft/core';

export interface SyntheticImages {
  length: number;
  rows: number;
  cols: number;
  images: Uint8Array;
  labels: Uint8Array;
  indices: Uint32Array;
  metadata: Record<string, string>;
}

/**
 * A small, easily separable image set for tests: class c lights up horizontal band c
 * (of `numClasses` bands) over faint noise. Shaped like an ImageTable. For tests, benchmark
 * scripts and demos: nothing at run time uses it.
 * `labelOf` maps the class index to the stored label (e.g. original MNIST labels).
 */
export function syntheticImages(options: {
  length: number;
  rows: number;
  cols: number;
  numClasses: number;
  seed: number;
  labelOf?: (classIndex: number) => number;
}): SyntheticImages {
  const { length, rows, cols, numClasses } = options;
  const rng = new Rng(options.seed);
  const images = new Uint8Array(length * rows * cols);
  const labels = new Uint8Array(length);
  const band = Math.max(1, Math.floor(rows / numClasses));
  for (let i = 0; i < length; i++) {
    const c = rng.nextInt(numClasses);
    labels[i] = options.labelOf ? options.labelOf(c) : c;
    const base = i * rows * cols;
    for (let p = 0; p < rows * cols; p++) images[base + p] = rng.nextInt(40);
    for (let r = c * band; r < Math.min(rows, (c + 1) * band); r++) {
      for (let col = 0; col < cols; col++) images[base + r * cols + col] = 200 + rng.nextInt(56);
    }
  }
  const indices = Uint32Array.from({ length }, (_, i) => i);
  return { length, rows, cols, images, labels, indices, metadata: {} };
}
