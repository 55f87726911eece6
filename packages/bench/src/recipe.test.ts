import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { networkVariables, readModelArtifact, readWeights } from '@graft/model';
import { phaseOneStage } from '@graft/phase-one';
import { inputArtifact, mnistSliceSplit, stageContext } from '@graft/testing';
import { ALL_LAYERS, HEAD_ONLY, PHASE_ONE_DEFAULTS, PHASE_TWO_DEFAULTS } from '@graft/train';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_PHASES, readSubset, trainSteps } from './bench.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'graft-bench-recipe-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("bench measures the stages' step", () => {
  it('uses the recipe objects and defaults the training stages use', () => {
    expect(BENCH_PHASES['phase one']).toEqual({ recipe: ALL_LAYERS, defaults: PHASE_ONE_DEFAULTS });
    expect(BENCH_PHASES['phase two']).toEqual({ recipe: HEAD_ONLY, defaults: PHASE_TWO_DEFAULTS });
    expect(BENCH_PHASES['phase one'].recipe).toBe(ALL_LAYERS);
    expect(BENCH_PHASES['phase two'].recipe).toBe(HEAD_ONLY);
  });

  it("trains bit-identically to the phase-one stage with its default params on the split stage's data", async () => {
    // Real MNIST rows through the real split stage; ~450 phase-one rows = 4 batches of 100.
    const split = await mnistSliceSplit(root, { train: 500, validation: 100, test: 100 });
    const steps = 3;
    const ctx = await stageContext(root, phaseOneStage, { epochs: 1, maxBatchesPerEpoch: steps }, { data: split });
    await phaseOneStage.run(ctx);
    const stageModel = await readModelArtifact(inputArtifact(ctx.outDir, 'phase-one'));
    const stageWeights = readWeights(networkVariables(stageModel));
    stageModel.dispose();

    const data = await readSubset(split.path, 'phase-one', 'train');
    const { model } = await trainSteps('phase one', data, PHASE_ONE_DEFAULTS.batchSize, steps);
    const benchWeights = readWeights(networkVariables(model));
    model.dispose();
    expect(Object.keys(benchWeights)).toEqual(Object.keys(stageWeights));
    for (const name of Object.keys(stageWeights) as Array<keyof typeof stageWeights>) {
      expect(Buffer.from(benchWeights[name].buffer).equals(Buffer.from(stageWeights[name].buffer)), name).toBe(true);
    }
  });
});
