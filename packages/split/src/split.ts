import { z } from 'zod';
import { GraftError, UsageError, defineStage } from '@graft/core';
import {
  SPLIT_NAMES,
  SUBSETS,
  countLabels,
  readDatasetSplit,
  selectRows,
  writeSplitData,
  writeSplitInfo,
  type ImageTable,
  type SplitInfo,
  type SplitName,
  type Subset,
} from '@graft/data';
import { SPLIT_ERROR_CODES } from './error-codes.ts';

export const splitParams = z.strictObject({
  // Labels are bytes: at most 256 distinct classes to hold out.
  holdout: z.array(z.number().int().min(0).max(255)).max(256).default([9]),
});
export type SplitParams = z.output<typeof splitParams>;

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
      SPLIT_ERROR_CODES.holdoutLabelAbsent,
      `split param holdout: label(s) ${absent.join(', ')} do not occur in the data, whose labels are ${present.join(', ')}. Hold out labels that exist.`,
    );
  }
  const phaseOneClasses = present.filter((label) => !heldOut.includes(label));
  if (phaseOneClasses.length === 0) {
    throw new UsageError(
      SPLIT_ERROR_CODES.holdoutAllLabels,
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
  inputs: { data: 'dataset' },
  output: ['split'],
  async run(ctx) {
    const input = ctx.inputs.data;
    if (!input) throw new GraftError(SPLIT_ERROR_CODES.inputMissing, `The split stage needs an ingest artifact in its 'data' input slot.`);
    const tables = {} as Record<SplitName, ImageTable>;
    for (const split of SPLIT_NAMES) tables[split] = await readDatasetSplit(input.path, split);

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
        throw new UsageError(SPLIT_ERROR_CODES.emptyPhaseOneSplit, `split: the phase-one ${split} split would be empty: ${why}. Every phase-one split needs rows to train and evaluate on.`);
      }
      phaseOne[split] = selectRows(table, rows);
    }

    const subsets: Record<Subset, Record<SplitName, ImageTable>> = { 'phase-one': phaseOne, 'phase-two': tables };
    const rows = {} as SplitInfo['rows'];
    const counts = {} as SplitInfo['counts'];
    for (const subset of SUBSETS) {
      rows[subset] = {} as Record<SplitName, number>;
      counts[subset] = {} as Record<SplitName, Record<string, number>>;
      for (const split of SPLIT_NAMES) {
        const table = subsets[subset][split];
        await writeSplitData(ctx.outDir, subset, split, {
          ...table,
          metadata: { ...table.metadata, subset, heldOut: plan.heldOut.join(',') },
        });
        rows[subset][split] = table.length;
        counts[subset][split] = countLabels(table.labels);
      }
    }
    const info: SplitInfo = { ...plan, rows, counts };
    await writeSplitInfo(ctx.outDir, info);
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
