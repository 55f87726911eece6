import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { GraftError, MAX_SEED, Rng, UsageError, defineStage, isGraftError } from '@graft/core';
import { readSplitData, readSplitInfo } from '@graft/data';
import type { SplitInfo } from '@graft/data';
import { TRANSPLANT_ERROR_CODES } from './error-codes.ts';

export const transplantParams = z.strictObject({
  copyBias: z
    .boolean()
    .default(false)
    .describe("Also copy the trained head bias of the old classes (the seed notebook kept the fresh 0.1 bias)"),
  seed: z.number().int().min(0).max(MAX_SEED).default(0).describe('Fresh head columns for the new classes'),
});
export type TransplantParams = z.output<typeof transplantParams>;

/** The transplant's own record (not the training-metrics format: nothing trains here). */
export const TRANSPLANT_FILE = 'metrics.json';

/** One copied head column: phase-one output unit -> phase-two output unit, and the original label both stand for. */
export interface CopiedColumn {
  label: number;
  from: number;
  to: number;
}

/**
 * Where each trained head column goes: phase-one unit i stands for original label
 * phaseOneClasses[i], which is phase-two unit phaseTwoClassMap[label].
 */
export function columnMapping(split: Pick<SplitInfo, 'phaseOneClasses' | 'phaseTwoClassMap'>): CopiedColumn[] {
  return split.phaseOneClasses.map((label, from) => {
    const to = split.phaseTwoClassMap[String(label)];
    if (to === undefined) {
      throw new GraftError(TRANSPLANT_ERROR_CODES.splitInfoInvalid, `split.json: phase-one label ${label} has no phase-two class; rebuild the split artifact`);
    }
    return { label, from, to };
  });
}

/**
 * The new head kernel ([hidden, newWidth], row-major): `fresh` everywhere except the
 * copied columns, which take the old kernel's ([hidden, oldWidth]) columns bit for bit.
 */
export function graftHeadKernel(
  oldKernel: Float32Array,
  oldWidth: number,
  fresh: Float32Array,
  newWidth: number,
  columns: readonly CopiedColumn[],
): Float32Array {
  const hidden = oldKernel.length / oldWidth;
  if (fresh.length !== hidden * newWidth) throw new RangeError(`fresh kernel has ${fresh.length} values, expected ${hidden} x ${newWidth}`);
  const out = Float32Array.from(fresh);
  for (let r = 0; r < hidden; r++) {
    for (const { from, to } of columns) out[r * newWidth + to] = oldKernel[r * oldWidth + from]!;
  }
  return out;
}

export interface TransplantMetricsFile {
  columns: CopiedColumn[];
  copyBias: boolean;
  classLabels: number[];
  heldOut: number[];
  valAccuracy: number;
  testAccuracy: number;
  newClassTestAccuracy: number | null;
  perClassTestAccuracy: Record<string, number | null>;
  confusion: number[][];
  backend: string;
  tfjs: string;
}

export const transplantStage = defineStage({
  name: 'transplant',
  version: '1',
  description: 'Grafts a head for every phase-two class onto the trained phase-one base: old columns copied, new ones fresh.',
  params: transplantParams,
  inputs: { model: 'model', data: 'split' },
  output: ['model'],
  compute: true,
  async run(ctx) {
    const { params, logger } = ctx;
    const modelInput = ctx.inputs.model;
    const dataInput = ctx.inputs.data;
    if (!modelInput) throw new GraftError(TRANSPLANT_ERROR_CODES.inputMissing, `transplant needs a phase-one artifact in its 'model' input slot.`);
    if (!dataInput) throw new GraftError(TRANSPLANT_ERROR_CODES.inputMissing, `transplant needs a split artifact in its 'data' input slot.`);
    if (!ctx.compute) throw new GraftError(TRANSPLANT_ERROR_CODES.backendNotSelected, 'transplant computes with tfjs: run it through the runner, which selects the backend first.');
    const backend = ctx.compute;
    const m = await import('@graft/model');

    const split = await readSplitInfo(dataInput.path);
    const modelDir = m.modelDirOf(modelInput.path);
    const source = await m.readModelArtifact(modelInput);
    let grafted: Awaited<ReturnType<typeof m.loadModel>> | undefined;
    try {
      let spec;
      let oldVars;
      try {
        spec = m.specFromModel(source);
        oldVars = m.networkVariables(source);
      } catch (error) {
        const code = isGraftError(error) ? error.code : TRANSPLANT_ERROR_CODES.modelArchitecture;
        throw new GraftError(code, `cannot graft onto the model in ${modelDir}: ${(error as Error).message}`, { cause: error });
      }
      const oldWidth = spec.numClasses;
      const expectedOld = Object.keys(split.classMap).length;
      if (oldWidth !== expectedOld) {
        throw new UsageError(
          TRANSPLANT_ERROR_CODES.headWidthMismatch,
          `the model in ${modelDir} has a ${oldWidth}-unit head but the split's classMap has ${expectedOld} classes ` +
            `(${split.phaseOneClasses.join(', ')}); feed transplant a phase-one model trained on this split (dataset 'phase-one')`,
        );
      }
      const columns = columnMapping(split);
      const newWidth = split.numClassesPhaseTwo;

      const old = m.readWeights(oldVars);
      const newSpec = { ...spec, numClasses: newWidth };
      grafted = m.buildNetwork(newSpec, null);
      const vars = m.networkVariables(grafted);
      for (const name of ['convKernel', 'convBias', 'fc1Kernel', 'fc1Bias'] as const) m.assignValues(vars[name], old[name]);
      const rng = new Rng(params.seed);
      const fresh = m.truncatedNormalValues(spec.hidden * newWidth, rng);
      m.assignValues(vars.headKernel, graftHeadKernel(old.headKernel, oldWidth, fresh, newWidth, columns));
      const bias = new Float32Array(newWidth).fill(m.BIAS_INIT);
      if (params.copyBias) for (const { from, to } of columns) bias[to] = old.headBias[from]!;
      m.assignValues(vars.headBias, bias);

      const load = async (part: 'validation' | 'test') =>
        m.mapLabels(await readSplitData(dataInput.path, 'phase-two', part), split.phaseTwoClassMap, `phase-two ${part}`);
      const validation = await load('validation');
      const test = await load('test');
      const valAccuracy = m.accuracyOn(vars, newSpec, validation);
      const testPredicted = m.predictClasses(vars, newSpec, test);
      const testEval = m.classificationReport(testPredicted, test.labels, newWidth);
      const newUnits = new Set(split.heldOut.map((label) => split.phaseTwoClassMap[String(label)]));
      const newRows = [...test.labels.keys()].filter((i) => newUnits.has(test.labels[i]!));
      const newClassTestAccuracy =
        newRows.length === 0 ? null : m.accuracyOf(newRows.map((i) => testPredicted[i]!), newRows.map((i) => test.labels[i]!));

      await m.writeModelArtifact(ctx.outDir, grafted, { graft: { stage: 'transplant', classLabels: split.phaseTwoClasses } });
      const file: TransplantMetricsFile = {
        columns,
        copyBias: params.copyBias,
        classLabels: split.phaseTwoClasses,
        heldOut: split.heldOut,
        valAccuracy,
        testAccuracy: testEval.accuracy,
        newClassTestAccuracy,
        perClassTestAccuracy: m.perClassByLabel(testEval, split.phaseTwoClasses),
        confusion: testEval.confusion,
        backend: backend.backend,
        tfjs: backend.tfjsVersion,
      };
      await mkdir(ctx.outDir, { recursive: true });
      await writeFile(join(ctx.outDir, TRANSPLANT_FILE), `${JSON.stringify(file, null, 2)}\n`);
      logger.info(
        { copiedColumns: columns.length, newWidth, valAccuracy, testAccuracy: testEval.accuracy },
        `transplant: ${columns.length} columns copied into a ${newWidth}-class head; val accuracy before fine-tuning ${(valAccuracy * 100).toFixed(2)} %`,
      );
      return {
        metrics: {
          valAccuracy,
          testAccuracy: testEval.accuracy,
          newClassTestAccuracy,
          copiedColumns: columns.length,
          testClasses: m.testClasses(testEval, split.phaseTwoClasses, split.heldOut),
        },
        producer: { tfjs: backend.tfjsVersion, backend: backend.backend },
      };
    } finally {
      source.dispose();
      grafted?.dispose();
    }
  },
});
