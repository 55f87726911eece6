/**
 * A baselines-shaped pipeline in miniature for the sweep tests: the real chain's stage names,
 * slots and artifact kinds (ingest -> split -> phase-one -> transplant -> phase-two, plus the
 * full-finetune and scratch baselines), with stages that write a small file derived from
 * their params and inputs in milliseconds. Every build is counted in `builds`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineStage, GraftError, type StageDefinition } from '@graft/core';
import type { StageRegistry } from '@graft/pipeline';
import { z } from 'zod';

export const builds: string[] = [];

async function chain(ctx: { outDir: string; inputs: Readonly<Record<string, { path: string }>> }, own: unknown): Promise<number> {
  const upstream = await Promise.all(Object.values(ctx.inputs).map(async (input) => JSON.parse(await readFile(join(input.path, 'value.json'), 'utf8')) as { score: number }));
  const text = JSON.stringify(own);
  let score = upstream.reduce((sum, u) => sum + u.score, 0);
  for (let i = 0; i < text.length; i++) score = (score * 31 + text.charCodeAt(i)) % 1_000_003;
  await writeFile(join(ctx.outDir, 'value.json'), JSON.stringify({ score }));
  return score;
}

const training = z.strictObject({
  epochs: z.number().int().min(1).max(1000).default(1),
  seed: z.number().int().min(0).default(0),
  learningRate: z.number().positive().max(1).default(1e-4),
  dataset: z.enum(['phase-one', 'phase-two']).default('phase-one'),
  trainBase: z.boolean().default(false),
  /** Fails the build on purpose (tests of failure handling). */
  fail: z.boolean().default(false),
});

export const testRegistry: StageRegistry = new Map<string, StageDefinition>(
  [
    defineStage({
      name: 'ingest',
      version: '1',
      description: 'test ingest',
      inputs: {},
      output: ['dataset'],
      params: z.strictObject({ source: z.string().default('fixture'), validationSize: z.number().int().min(0).default(5) }),
      async fingerprint({ source }) {
        return { 'train-images-idx3-ubyte': `sha-of-${source}` };
      },
      async run(ctx) {
        builds.push('ingest');
        return { metrics: { score: await chain(ctx, ctx.params) } };
      },
    }),
    defineStage({
      name: 'split',
      version: '1',
      description: 'test split',
      inputs: { data: 'dataset' },
      output: ['split'],
      params: z.strictObject({ holdout: z.array(z.number().int().min(0).max(9)).default([9]) }),
      async run(ctx) {
        builds.push('split');
        return { metrics: { score: await chain(ctx, ctx.params) } };
      },
    }),
    defineStage({
      name: 'phase-one',
      version: '1',
      description: 'test phase one',
      inputs: { data: 'split' },
      output: ['model', 'training-metrics'],
      params: training,
      async run(ctx) {
        builds.push(`phase-one:${ctx.params.seed}`);
        if (ctx.params.fail) throw new GraftError('BOOM', 'phase one failed on purpose');
        const score = await chain(ctx, ctx.params);
        return { metrics: { testAccuracy: 0.9 + (score % 1000) / 100_000 } };
      },
    }),
    defineStage({
      name: 'transplant',
      version: '1',
      description: 'test transplant',
      inputs: { model: 'model', data: 'split' },
      output: ['model'],
      params: z.strictObject({ copyBias: z.boolean().default(false) }),
      async run(ctx) {
        builds.push('transplant');
        return { metrics: { score: await chain(ctx, ctx.params) } };
      },
    }),
    defineStage({
      name: 'phase-two',
      version: '1',
      description: 'test phase two',
      inputs: { model: 'model', data: 'split' },
      output: ['model', 'training-metrics'],
      params: training,
      async run(ctx) {
        builds.push(`phase-two:${ctx.params.seed}:${ctx.params.learningRate}:${ctx.params.trainBase}`);
        if (ctx.params.fail) throw new GraftError('BOOM', 'phase two failed on purpose');
        const score = await chain(ctx, ctx.params);
        return { metrics: { testAccuracy: 0.95 + (score % 1000) / 100_000, heldOutAccuracy: 0.9 } };
      },
    }),
  ].map((stage) => [stage.name, stage as unknown as StageDefinition]),
);

/** pipelines/mnist-transfer.baselines.json's shape. */
export const baselinesConfig = {
  name: 'baselines-test',
  seed: 0,
  entries: {
    ingest: { stage: 'ingest' },
    split: { stage: 'split', inputs: { data: 'ingest' } },
    'phase-one': { stage: 'phase-one', inputs: { data: 'split' } },
    transplant: { stage: 'transplant', inputs: { model: 'phase-one', data: 'split' } },
    'phase-two': { stage: 'phase-two', inputs: { model: 'transplant', data: 'split' } },
    'full-finetune': { stage: 'phase-two', inputs: { model: 'transplant', data: 'split' }, params: { trainBase: true } },
    scratch: { stage: 'phase-one', inputs: { data: 'split' }, params: { dataset: 'phase-two' } },
  },
};
