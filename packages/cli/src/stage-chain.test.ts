/**
 * Stages chained through their artifacts, in process: the CLI package composes the stage
 * registry, so tests that run one real stage on another's output live here rather than in a
 * stage package (stage packages never depend on each other).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SPLIT_NAMES, readSplitInfo } from '@graft/data';
import { ingestStage } from '@graft/ingest';
import { splitStage } from '@graft/split';
import { inputArtifact, stageContext } from '@graft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'graft-chain-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe('ingest -> split', () => {
  it('splits real MNIST after the real ingest: phase one drops the 9s', async () => {
    const ingest = await stageContext(root, ingestStage, {}, {});
    await ingestStage.run(ingest);
    const ctx = await stageContext(root, splitStage, {}, { data: inputArtifact(ingest.outDir, 'ingest') });
    await splitStage.run(ctx);
    const info = await readSplitInfo(ctx.outDir);
    for (const split of SPLIT_NAMES) {
      const all = info.rows['phase-two'][split];
      expect(info.rows['phase-one'][split]).toBe(all - info.counts['phase-two'][split]['9']!);
    }
    expect(info.rows['phase-two']).toEqual({ train: 55000, validation: 5000, test: 10000 });
    expect(info.counts['phase-two'].test['9']).toBe(1009);
    expect(info.rows['phase-one'].test).toBe(10000 - 1009);
    expect(JSON.parse(await readFile(join(ctx.outDir, 'split.json'), 'utf8'))).toEqual(info);
  });
});
