import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { UsageError, silentProgress, type ArtifactManifest, type InputArtifact } from '@graft/core';
import { SPLIT_NAMES, readImageTable, readSplitData, readSplitInfo, splitDataPath, writeDatasetSplit, type ImageTable, type SplitName } from '@graft/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planSplit, splitStage } from './split.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'graft-split-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

let counter = 0;
async function tempDir(name: string): Promise<string> {
  const dir = join(root, `${name}-${counter++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

const context = async (params: Record<string, unknown>, inputs: Partial<Record<'data', InputArtifact>>) => ({
  params: splitStage.params.parse(params),
  // Possibly empty on purpose: a test checks the stage's own guard.
  inputs: inputs as Record<'data', InputArtifact>,
  outDir: await tempDir('out'),
  logger: pino({ level: 'silent' }),
  progress: silentProgress,
  backend: 'cpu' as const,
  checkpointDir: await tempDir('ckpt'),
  resume: true,
  key: 's'.repeat(64),
});

const artifact = (path: string): InputArtifact => ({ key: 'k'.repeat(64), path, manifest: {} as ArtifactManifest });

/** A 2x2-pixel table whose pixel bytes encode (split, row) so rows can be traced through the split. */
function table(labels: number[], salt: number): ImageTable {
  const length = labels.length;
  return {
    length,
    rows: 2,
    cols: 2,
    labels: Uint8Array.from(labels),
    images: Uint8Array.from({ length: length * 4 }, (_, i) => (Math.floor(i / 4) * 10 + salt + (i % 4)) & 0xff),
    indices: Uint32Array.from({ length }, (_, i) => 100 * salt + i),
    metadata: { split: String(salt) },
  };
}

/** Writes an ingest-shaped artifact directory. */
async function ingestArtifact(labels: Record<SplitName, number[]>): Promise<{ path: string; tables: Record<SplitName, ImageTable> }> {
  const path = await tempDir('ingest');
  const tables = {} as Record<SplitName, ImageTable>;
  for (const [i, split] of SPLIT_NAMES.entries()) {
    tables[split] = table(labels[split], i + 1);
    await writeDatasetSplit(path, split, tables[split]);
  }
  return { path, tables };
}

const digits = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const standard = { train: [...digits, 9, 3, 3, 0], validation: [9, 1, 2, 3, 4, 5, 6, 7, 8, 0], test: [5, 9, 3, ...digits] };

async function expectUsageError(promise: Promise<unknown>, code: string, ...parts: string[]): Promise<void> {
  const error = await promise.then(
    () => {
      throw new Error(`expected UsageError ${code}, but the stage succeeded`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UsageError);
  expect((error as UsageError).code).toBe(code);
  for (const part of parts) expect((error as UsageError).message).toContain(part);
}

describe('planSplit', () => {
  it('maps the remaining labels, sorted, to 0..k-1', () => {
    expect(planSplit([9], digits).classMap).toEqual(Object.fromEntries(digits.slice(0, 9).map((d) => [String(d), d])));
    expect(planSplit([3], digits).classMap).toEqual({ 0: 0, 1: 1, 2: 2, 4: 3, 5: 4, 6: 5, 7: 6, 8: 7, 9: 8 });
    expect(planSplit([7, 2, 7], [9, 2, 7, 4]).classMap).toEqual({ 4: 0, 9: 1 });
    expect(planSplit([7, 2, 7], [9, 2, 7, 4])).toMatchObject({ heldOut: [2, 7], phaseTwoClasses: [2, 4, 7, 9], phaseTwoClassMap: { 2: 0, 4: 1, 7: 2, 9: 3 } });
  });

  it('rejects absent labels and holding out everything', async () => {
    await expectUsageError(Promise.resolve().then(() => planSplit([10], digits)), 'HOLDOUT_LABEL_ABSENT', 'label(s) 10', '0, 1, 2');
    await expectUsageError(Promise.resolve().then(() => planSplit([1, 0], [0, 1])), 'HOLDOUT_ALL_LABELS', '[0, 1]');
  });
});

describe('split stage', () => {
  it('has strict params defaulting to holdout [9]', () => {
    expect(splitStage.params.parse({})).toEqual({ holdout: [9] });
    expect(() => splitStage.params.parse({ holdOut: [9] })).toThrow();
    expect(() => splitStage.params.parse({ holdout: [256] })).toThrow();
    expect(splitStage.inputs).toEqual({ data: 'dataset' });
    expect(splitStage.output).toEqual(['split']);
  });

  it('holds out 9: phase one drops every 9 and keeps original labels, pixels and indices; phase two keeps every row', async () => {
    const { path, tables } = await ingestArtifact(standard);
    const ctx = await context({}, { data: artifact(path) });
    const result = await splitStage.run(ctx);

    for (const split of SPLIT_NAMES) {
      const source = tables[split];
      const one = await readSplitData(ctx.outDir, 'phase-one', split);
      const kept = [...source.labels.keys()].filter((i) => source.labels[i] !== 9);
      expect(one.labels).toEqual(Uint8Array.from(kept.map((i) => source.labels[i]!)));
      expect(one.indices).toEqual(Uint32Array.from(kept.map((i) => source.indices[i]!)));
      expect(one.images).toEqual(Uint8Array.from(kept.flatMap((i) => [...source.images.subarray(i * 4, i * 4 + 4)])));
      expect(one.metadata).toMatchObject({ subset: 'phase-one', heldOut: '9', split: source.metadata.split });

      const two = await readImageTable(splitDataPath(ctx.outDir, 'phase-two', split));
      expect(two.labels).toEqual(source.labels);
      expect(two.images).toEqual(source.images);
      expect(two.indices).toEqual(source.indices);
    }

    const info = await readSplitInfo(ctx.outDir);
    expect(info.classMap).toEqual({ 0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8 });
    expect(info.heldOut).toEqual([9]);
    expect(info.phaseOneClasses).toEqual(digits.slice(0, 9));
    expect(info.phaseTwoClasses).toEqual(digits);
    expect(info.rows).toEqual({ 'phase-one': { train: 12, validation: 9, test: 11 }, 'phase-two': { train: 14, validation: 10, test: 13 } });
    expect(info.counts['phase-one'].train).toEqual({ 0: 2, 1: 1, 2: 1, 3: 3, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1 });
    expect(info.counts['phase-two'].test['9']).toBe(2);
    expect(result.metrics).toEqual({
      heldOut: [9],
      classMap: info.classMap,
      numClassesPhaseOne: 9,
      numClassesPhaseTwo: 10,
      rows: info.rows,
    });
  });

  it('holds out several labels with a gapped class map', async () => {
    const { path } = await ingestArtifact(standard);
    const ctx = await context({ holdout: [3, 0] }, { data: artifact(path) });
    const result = await splitStage.run(ctx);
    const info = await readSplitInfo(ctx.outDir);
    expect(info.classMap).toEqual({ 1: 0, 2: 1, 4: 2, 5: 3, 6: 4, 7: 5, 8: 6, 9: 7 });
    expect(info.heldOut).toEqual([0, 3]);
    expect(result.metrics).toMatchObject({ numClassesPhaseOne: 8, numClassesPhaseTwo: 10 });
    const train = await readSplitData(ctx.outDir, 'phase-one', 'train');
    expect([...train.labels]).toEqual([1, 2, 4, 5, 6, 7, 8, 9, 9]);
  });

  it('rejects a holdout label absent from the data, a holdout of every label, and empty phase-one splits', async () => {
    const { path } = await ingestArtifact(standard);
    await expectUsageError(splitStage.run(await context({ holdout: [9, 42] }, { data: artifact(path) })), 'HOLDOUT_LABEL_ABSENT', '42');
    await expectUsageError(splitStage.run(await context({ holdout: digits }, { data: artifact(path) })), 'HOLDOUT_ALL_LABELS');

    const onlyNinesInTest = await ingestArtifact({ train: [1, 9], validation: [1, 9], test: [9, 9] });
    await expectUsageError(splitStage.run(await context({}, { data: artifact(onlyNinesInTest.path) })), 'EMPTY_PHASE_ONE_SPLIT', 'test', 'all 2 of its rows');

    const noValidation = await ingestArtifact({ train: [1, 9], validation: [], test: [1, 9] });
    await expectUsageError(splitStage.run(await context({}, { data: artifact(noValidation.path) })), 'EMPTY_PHASE_ONE_SPLIT', 'validation', 'already empty');
  });

  it('readSplitInfo reports a missing or malformed split.json', async () => {
    await expect(readSplitInfo(await tempDir('empty'))).rejects.toMatchObject({ code: 'SPLIT_INFO_UNREADABLE' });
    const bad = await tempDir('bad');
    await writeFile(join(bad, 'split.json'), JSON.stringify({ classMap: { 0: 'zero' } }));
    await expect(readSplitInfo(bad)).rejects.toMatchObject({ code: 'SPLIT_INFO_INVALID', message: expect.stringContaining('classMap') });
  });
});
