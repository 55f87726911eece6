import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { GraftError, UsageError, atomicWriteFile, describeSystemError } from '@graft/core';
// vega, vega-lite and resvg load on first use (~0.5 s): every graft command imports this
// package, and only `compare --plot` needs them.
import type { TopLevelSpec } from 'vega-lite';
import type { RunRecord } from '@graft/runs';
import { REPORT_ERROR_CODES } from './error-codes.ts';

/** One point of one curve, as fed to vega-lite. */
export interface CurveDatum {
  run: string;
  entry: string;
  stage: string;
  step: number;
  valAccuracy: number;
}

const FONT = 'DejaVu Sans';

/**
 * Validation-accuracy curves of every training entry (any entry whose metrics hold a
 * `curve` of {step, valAccuracy}) of every run: one line per run × entry.
 */
export function curveData(runs: readonly RunRecord[]): CurveDatum[] {
  const data: CurveDatum[] = [];
  for (const run of runs) {
    for (const [entry, stage] of Object.entries(run.stages)) {
      const curve = stage.metrics?.curve;
      if (!Array.isArray(curve)) continue;
      for (const point of curve as unknown[]) {
        const { step, valAccuracy } = (point ?? {}) as { step?: unknown; valAccuracy?: unknown };
        if (typeof step !== 'number' || typeof valAccuracy !== 'number' || !Number.isFinite(valAccuracy)) continue;
        data.push({ run: run.runId, entry, stage: stage.stage, step, valAccuracy });
      }
    }
  }
  return data;
}

/**
 * A vega-lite spec: one panel per training entry (steps of phase one and phase two are
 * different scales), one color per run, so the legend names the runs.
 */
export function curvesSpec(data: CurveDatum[]): TopLevelSpec {
  const entries = [...new Set(data.map((d) => d.entry))];
  const runs = [...new Set(data.map((d) => d.run))];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Validation accuracy during training', anchor: 'start', fontSize: 15 },
    data: { values: data },
    facet: { field: 'entry', type: 'nominal', sort: entries, title: null, header: { labelFontSize: 13, labelFontWeight: 'bold' } },
    columns: Math.min(entries.length, 2),
    resolve: { scale: { x: 'independent', y: 'independent' } },
    spec: {
      width: 380,
      height: 240,
      mark: { type: 'line', strokeWidth: 1.8, interpolate: 'linear', point: data.length <= 200 ? { size: 18 } : false },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'training step', axis: { tickCount: 6 } },
        y: {
          field: 'valAccuracy',
          type: 'quantitative',
          title: 'validation accuracy',
          // Accuracy climbs fast then crawls: a zero-based axis would flatten the part worth seeing.
          scale: { zero: false, nice: true },
          axis: { format: '.1%', tickCount: 6 },
        },
        color: { field: 'run', type: 'nominal', sort: runs, title: 'run', legend: { orient: 'bottom', direction: 'vertical', labelLimit: 400 } },
        // Runs that share an artifact (or the same seed) draw identical curves; dashes keep
        // every run visible where lines overlap.
        strokeDash: { field: 'run', type: 'nominal', sort: runs, title: 'run', legend: { orient: 'bottom', direction: 'vertical', labelLimit: 400 } },
      },
    },
    config: {
      font: FONT,
      background: 'white',
      padding: 12,
      axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridOpacity: 0.5 },
      legend: { labelFontSize: 12, titleFontSize: 12 },
    },
  } as TopLevelSpec;
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const require = createRequire(import.meta.url);
let resvgReady: Promise<Uint8Array[]> | undefined;

/** resvg-wasm may be initialised once per process; the fonts are read once too. */
function initResvg(): Promise<Uint8Array[]> {
  resvgReady ??= (async () => {
    const { initWasm } = await import('@resvg/resvg-wasm');
    await initWasm(await readFile(require.resolve('@resvg/resvg-wasm/index_bg.wasm')));
    // Bundled fonts, not system ones: the PNG looks the same on every machine, and
    // machines without fonts (containers, CI) still get text.
    const fontDir = join(dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
    return Promise.all(['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map(async (f) => new Uint8Array(await readFile(join(fontDir, f)))));
  })();
  resvgReady.catch(() => {
    resvgReady = undefined;
  });
  return resvgReady;
}

/** Rasterises an SVG at 2× for sharp text on high-density screens and in PRs. */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  const fontBuffers = await initResvg();
  const { Resvg } = await import('@resvg/resvg-wasm');
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: 2 },
    background: 'white',
    font: { fontBuffers, defaultFontFamily: FONT, sansSerifFamily: FONT },
  });
  try {
    const image = resvg.render();
    try {
      return image.asPng();
    } finally {
      image.free();
    }
  } finally {
    resvg.free();
  }
}

/**
 * Draws the validation-accuracy curves of `runs` to `outPath` (anchor: `dvc plots diff`):
 * `.svg` as vega renders it, `.png` rasterised by resvg. Written via a temp file, so a
 * failed render never leaves half an image.
 */
export async function plotCurves(runs: readonly RunRecord[], outPath: string): Promise<void> {
  const ext = extname(outPath).toLowerCase();
  if (ext !== '.svg' && ext !== '.png') {
    throw new UsageError(REPORT_ERROR_CODES.plotFormat, `Cannot draw curves to ${outPath}: the file name must end in .svg or .png.`);
  }
  const data = curveData(runs);
  if (data.length === 0) {
    throw new UsageError(
      REPORT_ERROR_CODES.noCurves,
      `None of the runs ${runs.map((r) => r.runId).join(', ')} has a training curve (a training entry with metrics.curve); run a training entry first.`,
    );
  }
  const svg = await renderSvg(curvesSpec(data));
  const bytes = ext === '.svg' ? svg : await svgToPng(svg);
  try {
    await atomicWriteFile(outPath, bytes);
  } catch (error) {
    throw new GraftError(REPORT_ERROR_CODES.plotWriteFailed, `Cannot write the plot: ${describeSystemError(error, outPath)}.`, { cause: error });
  }
}
