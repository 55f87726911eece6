import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SplitName } from '../splits.ts';
import { readImageTable, writeImageTable } from '../table.ts';
import type { ImageTable } from '../table.ts';

/**
 * The `dataset` artifact kind (what ingest produces, what split consumes): one Arrow image
 * table per split, `train.arrow`, `validation.arrow`, `test.arrow` (original labels), and
 * `summary.json` describing where the rows came from. Stages read and write dataset
 * artifacts only through this module.
 */

/** Where a dataset artifact keeps one split's table. */
export function datasetSplitPath(artifactPath: string, split: SplitName): string {
  return join(artifactPath, `${split}.arrow`);
}

export function readDatasetSplit(artifactPath: string, split: SplitName): Promise<ImageTable> {
  return readImageTable(datasetSplitPath(artifactPath, split));
}

export function writeDatasetSplit(artifactPath: string, split: SplitName, table: ImageTable): Promise<void> {
  return writeImageTable(datasetSplitPath(artifactPath, split), table);
}

export const DATASET_SUMMARY_FILE = 'summary.json';

/** One source file as recorded in summary.json and the Arrow metadata. */
export interface SourceFile {
  /** File name as found in the source directory (may end in .gz). */
  file: string;
  bytes: number;
  /** sha256 of the file as stored (compressed bytes for .gz). */
  sha256: string;
}

/** Contents of summary.json. */
export interface DatasetSummary {
  source: string;
  image: { rows: number; cols: number };
  validationSize: number;
  splits: Record<SplitName, { rows: number; labelCounts: Record<string, number>; sourceFile: string; sourceRows: [number, number] }>;
  sourceFiles: Record<string, SourceFile>;
}

export async function writeDatasetSummary(artifactPath: string, summary: DatasetSummary): Promise<void> {
  await writeFile(join(artifactPath, DATASET_SUMMARY_FILE), `${JSON.stringify(summary, null, 2)}\n`);
}
