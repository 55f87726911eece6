import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { GraftError, JsonFileError, readJsonFile } from '@graft/core';
import { SPLIT_NAMES } from '../splits.ts';
import type { SplitName } from '../splits.ts';
import { readImageTable, writeImageTable } from '../table.ts';
import type { ImageTable } from '../table.ts';
import { DATA_ERROR_CODES } from '../error-codes.ts';

/**
 * The `split` artifact kind (what the split stage produces, what the training stages and
 * transplant consume): for each subset ('phase-one': without the held-out classes,
 * 'phase-two': every row) one Arrow table per split, original labels kept, and split.json
 * saying how original labels map to each phase's class indices. Stages read and write
 * split artifacts only through this module.
 */

export const SUBSETS = ['phase-one', 'phase-two'] as const;
export type Subset = (typeof SUBSETS)[number];

export const SPLIT_INFO_FILE = 'split.json';

const labels = z.array(z.number().int());
const classMap = z.record(z.string(), z.number().int());

/** split.json, declared once: the type below is derived from it. */
export const splitInfoSchema = z.object({
  /** Labels removed from phase one, sorted. */
  heldOut: labels,
  /** Original labels phase one trains on, sorted; phase-one class index i is phaseOneClasses[i]. */
  phaseOneClasses: labels,
  /** Every label present in the data, sorted; phase-two class index i is phaseTwoClasses[i]. */
  phaseTwoClasses: labels,
  /** Original label -> phase-one class index (the phase-one Arrow files keep original labels). */
  classMap,
  /** Original label -> phase-two class index; the identity for MNIST's 0..9. */
  phaseTwoClassMap: classMap,
  numClassesPhaseOne: z.number().int(),
  numClassesPhaseTwo: z.number().int(),
  rows: z.record(z.enum(SUBSETS), z.record(z.enum(SPLIT_NAMES), z.number().int())),
  /** Rows per original label, per subset and split. */
  counts: z.record(z.enum(SUBSETS), z.record(z.enum(SPLIT_NAMES), z.record(z.string(), z.number().int()))),
});

/** Contents of split.json. */
export type SplitInfo = z.infer<typeof splitInfoSchema>;

/** Where a split artifact keeps one subset's split (an Arrow image table with original labels). */
export function splitDataPath(artifactPath: string, subset: Subset, split: SplitName): string {
  return join(artifactPath, subset, `${split}.arrow`);
}

/** Reads one subset's split of a split artifact. */
export function readSplitData(artifactPath: string, subset: Subset, split: SplitName): Promise<ImageTable> {
  return readImageTable(splitDataPath(artifactPath, subset, split));
}

export async function writeSplitData(artifactPath: string, subset: Subset, split: SplitName, table: ImageTable): Promise<void> {
  const path = splitDataPath(artifactPath, subset, split);
  await mkdir(dirname(path), { recursive: true });
  await writeImageTable(path, table);
}

/** Reads split.json of a split artifact: SPLIT_INFO_UNREADABLE when absent, SPLIT_INFO_INVALID when it is not one. */
export async function readSplitInfo(artifactPath: string): Promise<SplitInfo> {
  const path = join(artifactPath, SPLIT_INFO_FILE);
  try {
    return await readJsonFile(path, splitInfoSchema);
  } catch (error) {
    if (!(error instanceof JsonFileError)) {
      throw new GraftError(DATA_ERROR_CODES.splitInfoUnreadable, `Cannot read the split description: ${(error as Error).message} Is ${artifactPath} a split artifact?`, { cause: error });
    }
    if (error.missing) {
      throw new GraftError(DATA_ERROR_CODES.splitInfoUnreadable, `Cannot read the split description: ${path} does not exist. Is ${artifactPath} a split artifact?`, { cause: error });
    }
    throw new GraftError(DATA_ERROR_CODES.splitInfoInvalid, `${path} does not describe a split (${error.problems.join('; ')}); rebuild the split artifact.`, { cause: error });
  }
}

export async function writeSplitInfo(artifactPath: string, info: SplitInfo): Promise<void> {
  await writeFile(join(artifactPath, SPLIT_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
}
