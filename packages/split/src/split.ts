import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { GraftError, UsageError, defineStage, describeSystemError } from '@graft/core';
import { SPLIT_NAMES, countLabels, readImageTable, selectRows, writeImageTable, type ImageTable, type SplitName } from '@graft/data';
import { ingestDataPath } from '@graft/ingest';

export const SUBSETS = ['phase-one', 'phase-two'] as const;
export type Subset = (typeof SUBSETS)[number];

export const SPLIT_INFO_FILE = 'split.json';

export const splitParams = z.strictObject({
  // Labels are bytes: at most 256 distinct classes to hold out.
  holdout: z.array(z.number().int().min(0).max(255)).max(256).default([9]),
});
export type SplitParams = z.output<typeof splitParams>;

/** Contents of split.json: how original labels map to each phase's class indices. */
export interface SplitInfo {
  /** Labels removed from phase one, sorted. */
  heldOut: number[];
  /** Original labels phase one trains on, sorted; phase-one class index i is phaseOneClasses[i]. */
  phaseOneClasses: number[];
  /** Every label present in the data, sorted; phase-two class index i is phaseTwoClasses[i]. */
  phaseTwoClasses: number[];
  /** Original label -> phase-one class index (the phase-one Arrow files keep original labels). */
  classMap: Record<string, number>;
  /** Original label -> phase-two class index; the identity for MNIST's 0..9. */
  phaseTwoClassMap: Record<string, number>;
  numClassesPhaseOne: number;
  numClassesPhaseTwo: number;
  rows: Record<Subset, Record<SplitName, number>>;
  /** Rows per original label, per subset and split. */
  counts: Record<Subset, Record<SplitName, Record<string, number>>>;
}

/** Where a split artifact keeps one subset's split (an Arrow image table with original labels). */
export function splitDataPath(artifactPath: string, subset: Subset, split: SplitName): string {
  return join(artifactPath, subset, `${split}.arrow`);
}

/** Reads one subset's split of a split artifact. */
export function readSplitData(artifactPath: string, subset: Subset, split: SplitName): Promise<ImageTable> {
  return readImageTable(splitDataPath(artifactPath, subset, split));
}

const splitInfoSchema = z.object({
  heldOut: z.array(z.number().int()),
  phaseOneClasses: z.array(z.number().int()),
  phaseTwoClasses: z.array(z.number().int()),
  classMap: z.record(z.string(), z.number().int()),
  phaseTwoClassMap: z.record(z.string(), z.number().int()),
  numClassesPhaseOne: z.number().int(),
  numClassesPhaseTwo: z.number().int(),
  rows: z.record(z.enum(SUBSETS), z.record(z.enum(SPLIT_NAMES), z.number().int())),
  counts: z.record(z.enum(SUBSETS), z.record(z.enum(SPLIT_NAMES), z.record(z.string(), z.number().int()))),
});

/** Reads split.json of a split artifact. */
export async function readSplit(artifactPath: string): Promise<SplitInfo> {
  const path = join(artifactPath, SPLIT_INFO_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new GraftError('SPLIT_INFO_UNREADABLE', `Cannot read the split description: ${describeSystemError(error, path)}. Is ${artifactPath} a split artifact?`, {
      cause: error,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new GraftError('SPLIT_INFO_INVALID', `${path} is not valid JSON (${(error as Error).message}); rebuild the split artifact.`, { cause: error });
  }
  const parsed = splitInfoSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
    throw new GraftError('SPLIT_INFO_INVALID', `${path} does not describe a split (${problems}); rebuild the split artifact.`);
  }
  return parsed.data as SplitInfo;
}

const indexMap = (labels: number[]) => Object.fromEntries(labels.map((label, i) => [String(label), i]));

/** Works out the classes and maps, or says precisely why the holdout is unusable. */
export function planSplit(holdout: readonly number[], presentLabels: readonly number[]): Pick<SplitInfo, 'heldOut' | 'phaseOneClasses' | 'phaseTwoClasses' | 'classMap' | 'phaseTwoClassMap' | 'numClassesPhaseOne' | 'numClassesPhaseTwo'> {
  const present = [...new Set(presentLabels)].sort((a, b) => a - b);
  const heldOut = [...new Set(holdout)].sort((a, b) => a - b);
  const absent = heldOut.filter((label) => !present.includes(label));
  if (absent.length > 0) {
    // An absent label would leave phase one identical to phase two: the transfer
    // experiment would silently measure nothing, and a typo (10 for MNIST's 9) would go unnoticed.
    throw new UsageError(
      'HOLDOUT_LABEL_ABSENT',
      `split param holdout: label(s) ${absent.join(', ')} do not occur in the data, whose labels are ${present.join(', ')}. Hold out labels that exist.`,
    );
  }
  const phaseOneClasses = present.filter((label) => !heldOut.includes(label));
  if (phaseOneClasses.length === 0) {
    throw new UsageError(
      'HOLDOUT_ALL_LABELS',
      `split param holdout: [${heldOut.join(', ')}] holds out every label in the data, leaving phase one nothing to learn. Keep at least one label (usually all but one).`,
    );
  }
  return {
    heldOut,
    phaseOneClasses,
    phaseTwoClasses: present,
    classMap: indexMap(phaseOneClasses),
    phaseTwoClassMap: indexMap(present),
    numClassesPhaseOne: phaseOneClasses.length,
    numClassesPhaseTwo: present.length,
  };
}

export const splitStage = defineStage({
  name: 'split',
  version: '1',
  description: 'Holds out classes: phase-one data without them (original labels kept), phase-two data with every row.',
  params: splitParams,
  inputs: ['data'],
  async run(ctx) {
    const input = ctx.inputs.data;
    if (!input) throw new GraftError('SPLIT_INPUT_MISSING', `The split stage needs an ingest artifact in its 'data' input slot.`);
    const tables = {} as Record<SplitName, ImageTable>;
    for (const split of SPLIT_NAMES) tables[split] = await readImageTable(ingestDataPath(input.path, split));

    const seen = new Uint8Array(256);
    for (const split of SPLIT_NAMES) for (const label of tables[split].labels) seen[label] = 1;
    const present = [...seen.keys()].filter((label) => seen[label] === 1);
    const plan = planSplit(ctx.params.holdout, present);
    if (plan.heldOut.length === 0) {
      ctx.logger.warn('split: holdout is empty, so phase one trains on every class and the transfer has nothing new to learn');
    }

    const keep = new Uint8Array(256);
    for (const label of plan.phaseOneClasses) keep[label] = 1;
    const phaseOne = {} as Record<SplitName, ImageTable>;
    for (const split of SPLIT_NAMES) {
      const table = tables[split];
      const rows: number[] = [];
      for (let i = 0; i < table.length; i++) if (keep[table.labels[i]!] === 1) rows.push(i);
      if (rows.length === 0) {
        const why =
          table.length === 0
            ? `the ingest artifact's ${split} split is already empty (ingest validationSize 0?)`
            : `all ${table.length} of its rows have held-out labels [${plan.heldOut.join(', ')}]`;
        throw new UsageError('EMPTY_PHASE_ONE_SPLIT', `split: the phase-one ${split} split would be empty: ${why}. Every phase-one split needs rows to train and evaluate on.`);
      }
      phaseOne[split] = selectRows(table, rows);
    }

    const subsets: Record<Subset, Record<SplitName, ImageTable>> = { 'phase-one': phaseOne, 'phase-two': tables };
    const rows = {} as SplitInfo['rows'];
    const counts = {} as SplitInfo['counts'];
    for (const subset of SUBSETS) {
      await mkdir(join(ctx.outDir, subset), { recursive: true });
      rows[subset] = {} as Record<SplitName, number>;
      counts[subset] = {} as Record<SplitName, Record<string, number>>;
      for (const split of SPLIT_NAMES) {
        const table = subsets[subset][split];
        await writeImageTable(splitDataPath(ctx.outDir, subset, split), {
          ...table,
          metadata: { ...table.metadata, subset, heldOut: plan.heldOut.join(',') },
        });
        rows[subset][split] = table.length;
        counts[subset][split] = countLabels(table.labels);
      }
    }
    const info: SplitInfo = { ...plan, rows, counts };
    await writeFile(join(ctx.outDir, SPLIT_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
    ctx.logger.info({ heldOut: plan.heldOut, rows }, 'split datasets written');
    return {
      metrics: {
        heldOut: plan.heldOut,
        classMap: plan.classMap,
        numClassesPhaseOne: plan.numClassesPhaseOne,
        numClassesPhaseTwo: plan.numClassesPhaseTwo,
        rows,
      },
    };
  },
});
