import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildReportModel, noLookup, storeLookup } from './report-model.ts';
import { jsonScriptText, renderReportHtml, reportBody, writeReport } from './report-html.ts';
import { fixtureRun, tempStore } from './test-fixtures.ts';

const base = fixtureRun({ runId: 'run-a', createdAt: '2026-11-20T10:00:00.000Z', seed: 0 });
const seed1 = fixtureRun({ runId: 'run-b', createdAt: '2026-11-20T11:00:00.000Z', seed: 1, p1Test: 0.98, p2Test: 0.97 });
const shortTwo = fixtureRun({ runId: 'run-c', createdAt: '2026-11-20T12:00:00.000Z', seed: 0, phaseTwoEpochs: 2 });
// run-c reuses run-a's phase-one and transplant (same seed): the report must show them shared.
shortTwo.stages['phase-one']!.cached = true;
shortTwo.stages['transplant']!.cached = true;

let cleanup: string[] = [];
afterEach(async () => {
  await Promise.all(cleanup.map((d) => rm(d, { recursive: true, force: true })));
  cleanup = [];
});

describe('buildReportModel', () => {
  it('draws one lineage node per key, shared where every run used it', async () => {
    const model = await buildReportModel([base, shortTwo], noLookup);
    const byEntry = (entry: string) => model.lineage.filter((n) => n.entries.includes(entry));
    expect(byEntry('ingest')).toHaveLength(1);
    expect(byEntry('ingest')[0]!.shared).toBe(true);
    expect(byEntry('phase-one')).toHaveLength(1);
    expect(byEntry('phase-one')[0]).toMatchObject({ shared: true, builtIn: ['run-a'], cachedIn: ['run-c'] });
    expect(byEntry('phase-two').map((n) => [n.shared, n.runs])).toEqual([
      [false, ['run-a']],
      [false, ['run-c']],
    ]);
    const transplant = byEntry('transplant')[0]!;
    expect(transplant.inputs).toEqual([base.stages['phase-one']!.key, base.stages['split']!.key]);
    expect(model.params).toEqual([{ path: 'phase-two.epochs', values: [8, 2] }]);
  });

  it('carries every curve point, per-class row and confusion cell of the run records', async () => {
    const model = await buildReportModel([base, seed1], noLookup);
    const curve = base.stages['phase-two']!.metrics['curve'] as { step: number; valAccuracy: number }[];
    expect(model.curves.filter((c) => c.run === 'run-a' && c.entry === 'phase-two').map((c) => [c.step, c.valAccuracy])).toEqual(curve.map((p) => [p.step, p.valAccuracy]));
    const p2 = model.classes.filter((c) => c.run === 'run-b' && c.entry === 'phase-two');
    expect(p2.map((c) => c.label)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(p2.filter((c) => c.heldOut).map((c) => c.label)).toEqual([9]);
    expect(p2[0]).toMatchObject({ accuracy: 0.97, count: 100 });
    expect(model.classes.filter((c) => c.entry === 'phase-one' && c.run === 'run-a')).toHaveLength(9);
    const cells = model.confusion.filter((c) => c.run === 'run-a' && c.entry === 'phase-two');
    expect(cells).toHaveLength(100);
    expect(cells.find((c) => c.actual === 3 && c.predicted === 4)).toMatchObject({ count: 2, share: 0.02 });
    expect(model.seedGroups).toHaveLength(1);
    const spread = model.seedGroups[0]!.metrics.find((m) => m.entry === 'phase-two' && m.metric === 'testAccuracy')!;
    expect(spread).toMatchObject({ n: 2, min: 0.97, max: 0.9788, values: [0.9788, 0.97] });
    expect(spread.mean).toBeCloseTo(0.9744, 10);
    expect(spread.std).toBeCloseTo(Math.sqrt(((0.9788 - 0.9744) ** 2 * 2) / 1), 10);
  });

  it('reads confusion and per-class accuracy from metrics.json for artifacts built before results carried them', async () => {
    const store = await tempStore();
    cleanup.push(store);
    const old = fixtureRun({ runId: 'old', createdAt: '2026-11-01T10:00:00.000Z' });
    delete old.stages['phase-two']!.metrics['testClasses'];
    const { stage, key } = old.stages['phase-two']!;
    await mkdir(join(store, stage, key), { recursive: true });
    await writeFile(
      join(store, stage, key, 'metrics.json'),
      JSON.stringify({ classLabels: [0, 1], heldOut: [1], confusion: [[3, 1], [0, 4]], perClassTestAccuracy: { 0: 0.75, 1: 1 } }),
    );
    const model = await buildReportModel([old], storeLookup(store));
    expect(model.classes.filter((c) => c.entry === 'phase-two')).toEqual([
      { run: 'old', entry: 'phase-two', stage: 'phase-two', label: 0, count: 4, accuracy: 0.75, heldOut: false },
      { run: 'old', entry: 'phase-two', stage: 'phase-two', label: 1, count: 4, accuracy: 1, heldOut: true },
    ]);
    // No store entry for a key (gc'd): the node says so instead of failing.
    expect(model.lineage.every((n) => n.inStore === false)).toBe(true);
  });
});

describe('report HTML', () => {
  it('is one file with every script inline and nothing fetched from the network', async () => {
    const html = await renderReportHtml(await buildReportModel([base, seed1, shortTwo], noLookup));
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+href=/i);
    expect(html).toContain("default-src 'none'");
    // The libraries are inline: vega's, vega-lite's and vega-embed's globals are defined in the page.
    for (const global of ['.vega={}', '.vegaLite={}', '.vegaEmbed=']) expect(html).toContain(global);
    expect(Buffer.byteLength(html)).toBeLessThan(5 * 1024 * 1024);
  });

  it('escapes names so a config name cannot end a script or inject markup', async () => {
    const hostile = fixtureRun({ runId: 'run-x', createdAt: '2026-11-20T10:00:00.000Z' });
    hostile.configName = '</script><img src=x onerror=alert(1)>';
    const html = await renderReportHtml(await buildReportModel([hostile], noLookup));
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(jsonScriptText({ a: '</script>' })).toBe('{"a":"\\u003c/script>"}');
    expect(JSON.parse(jsonScriptText({ a: '</script>\u2028' }))).toEqual({ a: '</script>\u2028' });
  });

  it('has a chart for the curves of each phase, per-class accuracy, confusion, seeds and timings', async () => {
    const { html, specs } = reportBody(await buildReportModel([base, seed1], noLookup));
    expect(Object.keys(specs).sort()).toEqual(
      ['classes-phase-one', 'classes-phase-two', 'classes-transplant', 'confusion-phase-one', 'confusion-phase-two', 'confusion-transplant', 'curves-phase-one', 'curves-phase-two', 'seed-curves-0', 'seed-spread-0', 'timings'].sort(),
    );
    for (const id of Object.keys(specs)) expect(html).toContain(`data-chart="${id}"`);
    expect(html).toContain('Held-out class 9');
  });

  it('writeReport refuses a non-HTML name and writes atomically', async () => {
    const store = await tempStore();
    cleanup.push(store);
    await expect(writeReport([base], store, join(store, 'report.txt'))).rejects.toMatchObject({ code: 'REPORT_FORMAT', exitCode: 2 });
    const out = join(store, 'r.html');
    const bytes = await writeReport([base, seed1], store, out);
    expect((await stat(out)).size).toBe(bytes);
    expect(await readFile(out, 'utf8')).toContain('graft report: 2 runs');
  });
});
