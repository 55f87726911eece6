/**
 * `graft report` in a real browser: a tiny real store (two seeds of the whole chain on a
 * 600-image MNIST slice), the report written by the graft binary, opened from disk in
 * Debian's chromium. The charts must hold the run records' numbers, not just exist.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '@graft/runs';
import { chromiumMissing, graft, openBrowser, screenshot, tinyStore, type TestBrowser } from './test-browser.ts';

let work: string;
let store: string;
let runIds: string[];
let records: RunRecord[];
let browser: TestBrowser;

describe.skipIf(chromiumMissing !== undefined)(`graft report in chromium${chromiumMissing ? ` (${chromiumMissing})` : ''}`, () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'graft-report-e2e-'));
    ({ store, runIds } = await tinyStore(work));
    records = await Promise.all(runIds.map(async (id) => JSON.parse(await readFile(join(store, 'runs', id, 'run.json'), 'utf8')) as RunRecord));
    browser = await openBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('writes one self-contained file that renders every chart with the runs\' data, without errors', async () => {
    const out = join(work, 'report.html');
    const result = await graft(['report', ...runIds, '--out', out, '--artifacts', store], work);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('report of 2 runs written to');
    expect((await stat(out)).size).toBeLessThan(5 * 1024 * 1024);

    const { page, problems } = await browser.page();
    // Any request at all would be the network: the file must need none.
    const requests: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url());
    });
    await page.goto(pathToFileURL(out).href, { waitUntil: 'load' });
    await page.waitForSelector('body[data-charts-ready="true"]', { timeout: 30_000 });
    // The page's own clock, from navigation start: excludes the browser's process start-up.
    const timing = await page.evaluate(() => {
      const nav = (globalThis as any).performance.getEntriesByType('navigation')[0];
      return { load: nav.loadEventEnd as number, ready: (globalThis as any).graftReport.state.readyAt as number };
    });
    console.log(`report: load event after ${timing.load.toFixed(0)} ms, every chart drawn after ${timing.ready.toFixed(0)} ms`);
    // Speed is a printed figure (the README quotes it from a quiet run), not a timed assertion
    // that flakes with the machine's load; this bound only catches a page that hangs.
    expect(timing.load).toBeLessThan(10_000);

    // Learning curves: the points in each chart are the run records' curve points.
    for (const entry of ['phase-one', 'phase-two']) {
      const shown = await page.evaluate((id) => (globalThis as any).graftReport.charts[id].data('curves').map((d: any) => [d.run, d.step, d.valAccuracy]), `curves-${entry}`);
      const expected = records.flatMap((r) => (r.stages[entry]!.metrics['curve'] as { step: number; valAccuracy: number }[]).map((p) => [r.runId, p.step, p.valAccuracy]));
      expect(shown).toEqual(expected);
      expect(expected.length).toBeGreaterThan(4);
      // One drawn line per run.
      expect(await page.locator(`#chart-curves-${entry} svg path[aria-roledescription="line mark"]`).count()).toBe(2);
    }
    // Per-class accuracy and confusion: from the stages' testClasses.
    for (const entry of ['phase-one', 'transplant', 'phase-two']) {
      const classes = await page.evaluate((id) => (globalThis as any).graftReport.charts[id].data('classes').map((d: any) => [d.run, d.label, d.accuracy, d.heldOut]), `classes-${entry}`);
      const expected = records.flatMap((r) => {
        const tc = r.stages[entry]!.metrics['testClasses'] as { labels: number[]; accuracy: (number | null)[]; heldOut: number[] };
        return tc.labels.map((label, i) => [r.runId, label, tc.accuracy[i], tc.heldOut.includes(label)]);
      });
      expect(classes).toEqual(expected);
      const cells = await page.evaluate((id) => (globalThis as any).graftReport.charts[id].data('confusion').map((d: any) => d.count), `confusion-${entry}`);
      const matrixTotal = records.reduce((s, r) => s + (r.stages[entry]!.metrics['testClasses'] as { confusion: number[][] }).confusion.flat().reduce((a, b) => a + b, 0), 0);
      expect(cells.reduce((a: number, b: number) => a + b, 0)).toBe(matrixTotal);
      expect(await page.locator(`#chart-confusion-${entry} svg path[aria-roledescription="rect mark"]`).count()).toBeGreaterThan(0);
    }
    // The held-out class is named on the phase-two axis.
    expect(await page.locator('#chart-classes-phase-two svg').textContent()).toContain('9 (held out)');
    // Metrics table and the seed summary carry the recorded values.
    for (const r of records) {
      const cell = page.locator(`[data-metric="phase-two.testAccuracy"][data-run="${r.runId}"]`);
      expect(Number(await cell.getAttribute('data-value'))).toBe(r.stages['phase-two']!.metrics['testAccuracy']);
    }
    const seedMean = Number(await page.locator('[data-seed-metric="phase-two.testAccuracy"]').getAttribute('data-mean'));
    const values = records.map((r) => r.stages['phase-two']!.metrics['testAccuracy'] as number);
    expect(seedMean).toBeCloseTo((values[0]! + values[1]!) / 2, 12);
    // Lineage: ingest and split shared, the seeded entries one box per run.
    expect(await page.locator('svg.lineage .node.shared').count()).toBe(2);
    expect(await page.locator('svg.lineage .node.rebuilt').count()).toBe(6);
    expect(await page.locator('#environment').textContent()).toContain(records[0]!.versions.node);

    // Interaction: hovering the curve shows a tooltip with the nearest point's numbers.
    const chart = page.locator('#chart-curves-phase-one svg');
    await chart.scrollIntoViewIfNeeded();
    const box = (await chart.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 3, { steps: 4 });
    await page.mouse.move(box.x + box.width / 2 + 5, box.y + box.height / 3, { steps: 2 });
    await expect.poll(() => page.evaluate(() => (globalThis as any).document.getElementById('vg-tooltip-element')?.textContent ?? ''), { timeout: 5000 }).toMatch(/validation accuracy/);

    await screenshot(page, 'report');
    expect(problems).toEqual([]);
    expect(requests).toEqual([]);
  });

  it('names the run it cannot find, exit code 2', async () => {
    const result = await graft(['report', 'no-such-run', '--artifacts', store], work);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no-such-run');
  });
});
