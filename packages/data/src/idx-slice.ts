import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeIdx, findIdxFile, readIdxFile } from './idx.ts';

/**
 * Writes the first `trainCount` training and `testCount` test examples of an IDX
 * dataset directory as a new, raw IDX dataset directory: a real-data subset small
 * enough for end-to-end tests and smoke runs.
 */
export async function writeIdxSlice(sourceDir: string, outDir: string, trainCount: number, testCount: number): Promise<void> {
  await mkdir(outDir, { recursive: true });
  for (const [prefix, count] of [['train', trainCount], ['t10k', testCount]] as const) {
    const images = await readIdxFile(await findIdxFile(sourceDir, `${prefix}-images-idx3-ubyte`));
    const labels = await readIdxFile(await findIdxFile(sourceDir, `${prefix}-labels-idx1-ubyte`));
    const [available, rows, cols] = images.dims as [number, number, number];
    if (count > available) throw new RangeError(`writeIdxSlice: asked for ${count} ${prefix} images, ${sourceDir} has ${available}`);
    await writeFile(join(outDir, `${prefix}-images-idx3-ubyte`), encodeIdx([count, rows, cols], images.data.subarray(0, count * rows * cols)));
    await writeFile(join(outDir, `${prefix}-labels-idx1-ubyte`), encodeIdx([count], labels.data.subarray(0, count)));
  }
}
