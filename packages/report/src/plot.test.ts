import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '@graft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curveData, plotCurves } from './plot.ts';
import { fixtureRun, tempStore } from './test-fixtures.ts';

const a = fixtureRun({ runId: '20250301-101500-a1b2c3', createdAt: '2025-03-01T10:15:00Z', seed: 0, withFullFinetune: true });
const b = fixtureRun({ runId: '20250302-101500-d4e5f6', createdAt: '2025-03-02T10:15:00Z', seed: 1, phaseTwoEpochs: 2 });

let dir: string;
beforeAll(async () => {
  dir = await tempStore();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('curveData', () => {
  it('takes one series per run × training entry, skipping entries without a curve', () => {
    const data = curveData([a, b]);
    const series = [...new Set(data.map((d) => `${d.run}/${d.entry}`))];
    expect(series).toEqual([`${a.runId}/phase-one`, `${a.runId}/phase-two`, `${a.runId}/full-finetune`, `${b.runId}/phase-one`, `${b.runId}/phase-two`]);
    const bTwo = data.filter((d) => d.run === b.runId && d.entry === 'phase-two');
    expect(bTwo.at(-1)).toMatchObject({ step: 1100, stage: 'phase-two' });
    expect(bTwo).toHaveLength(23);
  });
});

describe('plotCurves', () => {
  it('writes an SVG naming every run in the legend and labelling both axes', async () => {
    const out = join(dir, 'nested', 'curves.svg');
    await plotCurves([a, b], out);
    const svg = await readFile(out, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('role-legend');
    for (const id of [a.runId, b.runId]) expect(svg).toContain(`>${id}</text>`);
    expect(svg).toContain('>training step</text>');
    expect(svg).toContain('>validation accuracy</text>');
    for (const entry of ['phase-one', 'phase-two', 'full-finetune']) expect(svg).toContain(`>${entry}</text>`);
    expect(svg).toContain('DejaVu Sans');
    // One line per run × training entry: 3 for run a, 2 for run b.
    expect(svg.match(/class="mark-line role-mark/g)?.length).toBe(5);
  });

  it('writes a PNG with rendered text', async () => {
    const out = join(dir, 'curves.png');
    await plotCurves([a, b], out);
    const png = await readFile(out);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    // IHDR: width and height at bytes 16..24; rendered at 2x the SVG's size.
    expect(png.readUInt32BE(16)).toBeGreaterThan(1000);
    expect(png.readUInt32BE(20)).toBeGreaterThan(600);
    expect((await stat(out)).size).toBeGreaterThan(30_000);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('rejects other extensions before drawing anything', async () => {
    const out = join(dir, 'curves.jpg');
    await expect(plotCurves([a], out)).rejects.toMatchObject({ code: 'PLOT_FORMAT' });
    await expect(plotCurves([a], out)).rejects.toBeInstanceOf(UsageError);
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('says so when no run has a training curve', async () => {
    const ingestOnly = structuredClone(a);
    ingestOnly.stages = { ingest: ingestOnly.stages.ingest! };
    await expect(plotCurves([ingestOnly], join(dir, 'none.svg'))).rejects.toMatchObject({ code: 'NO_CURVES' });
  });
});
