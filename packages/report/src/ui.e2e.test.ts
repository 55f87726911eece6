/**
 * `graft ui` in a real browser over a tiny real store (two seeds of the whole chain on a
 * 600-image MNIST slice): every page, no console error or failed request, charts holding
 * the run records' numbers, a digit drawn with mouse events, and the browser's tfjs
 * predictions on 200 test images checked against graft's own evaluation of the same model.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '@graft/artifacts';
import { readSplitData } from '@graft/data';
import type { RunRecord } from '@graft/runs';
import { startUiServer, type UiServer } from './ui-server.ts';
import { GRAFT_BIN, chromiumMissing, openBrowser, screenshot, tinyStore, type TestBrowser } from './test-browser.ts';

let work: string;
let store: string;
let runIds: string[];
let records: RunRecord[];
let browser: TestBrowser;
let server: UiServer;

/** graft's own evaluation (the model package's forward pass, dropout off) as class probabilities. */
async function graftProbabilities(modelDir: string, files: ReadonlyArray<{ path: string; bytes: number }>, x: Float32Array, n: number): Promise<number[][]> {
  const m = await import('@graft/model');
  const tf = await import('@tensorflow/tfjs');
  await m.initBackend('wasm');
  // Only the files the artifact's manifest lists, as the stages load models.
  const model = await m.loadModel(modelDir, m.modelFilesOf(files, 'model'));
  try {
    const spec = m.specFromModel(model);
    const vars = m.networkVariables(model);
    const probabilities = tf.tidy(() => tf.softmax(m.headLogits(vars, m.features(vars, m.inputTensor(x, n, spec), spec, null))));
    const flat = Array.from(probabilities.dataSync());
    probabilities.dispose();
    return Array.from({ length: n }, (_, i) => flat.slice(i * spec.numClasses, (i + 1) * spec.numClasses));
  } finally {
    model.dispose();
  }
}

const argmax = (p: number[]) => p.indexOf(Math.max(...p));

describe.skipIf(chromiumMissing !== undefined)(`graft ui in chromium${chromiumMissing ? ` (${chromiumMissing})` : ''}`, () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'graft-ui-e2e-'));
    ({ store, runIds } = await tinyStore(work));
    records = await Promise.all(runIds.map(async (id) => JSON.parse(await readFile(join(store, 'runs', id, 'run.json'), 'utf8')) as RunRecord));
    // Two more records: one whose process is alive (this test's: a run still writing, two
    // entries done) and one whose process is gone (killed mid-run: interrupted).
    const base = records[0]!;
    const partial = Object.fromEntries(Object.entries(base.stages).slice(0, 2));
    for (const [runId, pid] of [['20991231-000000-alive1', process.pid], ['20991230-000000-dead01', 2 ** 22 + 7]] as const) {
      await mkdir(join(store, 'runs', runId), { recursive: true });
      const record = { ...base, runId, status: 'running', pid, hostname: hostname(), createdAt: runId.startsWith('20991231') ? '2099-12-31T00:00:00.000Z' : '2099-12-30T00:00:00.000Z', stages: partial };
      delete (record as Partial<RunRecord>).finishedAt;
      await writeFile(join(store, 'runs', runId, 'run.json'), JSON.stringify(record));
      await writeFile(join(store, 'runs', runId, 'log.ndjson'), `${JSON.stringify({ level: 30, msg: 'phase-one: epoch 1/2', entry: 'phase-one' })}\n`);
    }
    server = await startUiServer({ storeRoot: store, port: 0 });
    browser = await openBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('graft ui serves on 127.0.0.1 and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [GRAFT_BIN, 'ui', '--port', '0', '--artifacts', store], { stdio: ['ignore', 'pipe', 'pipe'] });
    const url = await new Promise<string>((done, fail) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const match = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (match) done(match[1]!);
      });
      child.once('exit', (code) => fail(new Error(`graft ui exited ${code}: ${out}`)));
    });
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('graft ui');
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('lists runs newest first, filters them, marks the interrupted one and shows the running one\'s progress', async () => {
    const { page, problems } = await browser.page();
    await page.goto(`${server.url}#/runs`);
    await page.waitForSelector('body[data-view-ready="runs"]');
    await page.waitForSelector('[data-run-row]');
    const rows = await page.locator('[data-run-row]').evaluateAll((els) => els.map((e) => [e.getAttribute('data-run-row'), e.getAttribute('class')]));
    expect(rows).toEqual([
      ['20991231-000000-alive1', 'running'],
      ['20991230-000000-dead01', 'interrupted'],
      ...[...records].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1)).map((r) => [r.runId, 'succeeded']),
    ]);
    expect(await page.locator('[data-run-row="20991231-000000-alive1"] [data-progress]').getAttribute('data-progress')).toBe('2/5');
    await screenshot(page, 'ui-runs');
    await page.fill('#run-filter', 'phase-one.seed=2');
    await expect.poll(() => page.locator('[data-run-row]').count()).toBe(1);
    expect(await page.locator('[data-run-row]').getAttribute('data-run-row')).toBe(records.find((r) => r.seed === 2)!.runId);
    await page.fill('#run-filter', 'interrupted');
    await expect.poll(() => page.locator('[data-run-row]').count()).toBe(1);
    expect(problems).toEqual([]);
  });

  it('compares runs live: the report\'s charts with the run records\' data', async () => {
    const { page, problems } = await browser.page();
    await page.goto(`${server.url}#/runs`);
    await page.waitForSelector('[data-run-row]');
    for (const id of runIds) await page.check(`input[data-run="${id}"]`);
    await page.click('#compare-selected');
    await page.waitForSelector('body[data-view-ready="compare"]');
    await page.waitForSelector('body[data-charts-ready="true"]');
    const shown = await page.evaluate(() => (globalThis as any).graftReport.charts['curves-phase-two'].data('curves').map((d: any) => [d.run, d.step, d.valAccuracy]));
    expect(shown).toEqual(records.flatMap((r) => (r.stages['phase-two']!.metrics['curve'] as { step: number; valAccuracy: number }[]).map((p) => [r.runId, p.step, p.valAccuracy])));
    expect(await page.locator('#chart-curves-phase-two svg path[aria-roledescription="line mark"]').count()).toBe(2);
    expect(await page.locator('svg.lineage .node').count()).toBe(8);
    await screenshot(page, 'ui-compare');
    expect(problems).toEqual([]);
  });

  it('browses artifacts: manifest, files served by key, verify status', async () => {
    const { page, problems } = await browser.page();
    const manifests = await new ArtifactStore(store).list();
    await page.goto(`${server.url}#/artifacts`);
    await page.waitForSelector('body[data-view-ready="artifacts"]');
    expect(await page.locator('[data-artifact]').count()).toBe(manifests.length);
    const phaseTwo = manifests.find((m) => m.stage === 'phase-two')!;
    await page.click(`[data-artifact="phase-two/${phaseTwo.key}"] a`);
    await page.waitForSelector('#verify');
    expect(await page.locator('#verify').textContent()).toContain('verified');
    expect(await page.locator('#files a').allTextContents()).toEqual(phaseTwo.files.map((f) => f.path));
    const response = await page.request.get(`${server.url}store/phase-two/${phaseTwo.key}/metrics.json`);
    expect(response.headers()['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(await response.text()).testAccuracy).toBe(phaseTwo.metrics['testAccuracy']);
    await screenshot(page, 'ui-artifacts');
    expect(problems).toEqual([]);
  });

  it('runs a model in the browser: the same predictions as graft on 200 test images, a drawn digit, the mistakes', async () => {
    const { page, problems } = await browser.page();
    await page.goto(`${server.url}#/playground`);
    await page.waitForSelector('body[data-model-ready]', { timeout: 60_000 });
    const key = (await page.getAttribute('body', 'data-model-ready'))!;
    const manifests = await new ArtifactStore(store).list();
    const artifact = manifests.find((m) => m.key === key)!;
    expect(artifact.files.some((f) => f.path === 'model/model.json')).toBe(true);
    const modelDir = join(store, artifact.stage, key, 'model');

    // The same 200 test images (phase-two test set of the model's split), evaluated by graft.
    const test = await readSplitData(join(store, 'split', artifact.inputs['data']!), 'phase-two', 'test');
    const n = Math.min(200, test.length);
    expect(n).toBe(200);
    const size = test.rows * test.cols;
    const x = Float32Array.from(test.images.subarray(0, n * size), (v) => v / 255);
    const expected = await graftProbabilities(modelDir, artifact.files, x, n);
    const browserPredictions = (await page.evaluate(() => (globalThis as any).graftUi.playground.predictions)) as number[][];
    expect(browserPredictions).toHaveLength(n);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      expect(argmax(browserPredictions[i]!), `image ${i}`).toBe(argmax(expected[i]!));
      for (let c = 0; c < expected[i]!.length; c++) worst = Math.max(worst, Math.abs(browserPredictions[i]![c]! - expected[i]![c]!));
    }
    console.log(`playground: 200 test images, largest probability difference browser vs graft ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);

    // The gallery holds exactly the images whose prediction is not their label.
    const labels = (await page.evaluate(() => (globalThis as any).graftUi.playground.classLabels)) as number[];
    const wrong = expected.map((p, i) => (labels[argmax(p)] !== test.labels[i] ? i : -1)).filter((i) => i >= 0);
    expect(await page.locator('#gallery [data-index]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-index'))))).toEqual(wrong);

    // Draw a "1": one vertical stroke with real mouse events.
    const canvas = page.locator('#draw');
    await canvas.scrollIntoViewIfNeeded();
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.15);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.52, box.y + box.height * 0.5, { steps: 8 });
    await page.mouse.move(box.x + box.width * 0.54, box.y + box.height * 0.85, { steps: 8 });
    await page.mouse.up();
    await page.waitForSelector('#probabilities[data-source="drawing"]');
    const drawn = (await page.evaluate(() => ({ input: (globalThis as any).graftUi.playground.lastInput, p: (globalThis as any).graftUi.playground.lastProbabilities }))) as { input: number[]; p: number[] };
    expect(drawn.input.filter((v) => v > 0.5).length).toBeGreaterThan(20);
    const [graftDrawn] = await graftProbabilities(modelDir, artifact.files, Float32Array.from(drawn.input), 1);
    const shownClass = Number(await page.locator('#predicted').textContent());
    expect(shownClass).toBe(labels[argmax(graftDrawn!)]);
    for (let c = 0; c < drawn.p.length; c++) expect(Math.abs(drawn.p[c]! - graftDrawn![c]!)).toBeLessThan(1e-4);
    console.log(`playground: the drawn stroke is classified ${shownClass} (p=${Math.max(...drawn.p).toFixed(3)})`);
    await screenshot(page, 'ui-playground');

    // A held-out test image can be picked too.
    await page.locator('#test-strip .tile.held-out').first().click();
    await page.waitForSelector('#probabilities[data-source^="test:"]');
    expect(problems).toEqual([]);
  });
});
