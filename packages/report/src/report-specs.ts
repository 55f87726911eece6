import type { ReportModel } from './report-model.ts';

/** A vega-lite spec as plain JSON (typed loosely: it is embedded, not compiled, here). */
export type Spec = Record<string, unknown>;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const CONFIG = {
  font: 'system-ui, -apple-system, "Segoe UI", sans-serif',
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridOpacity: 0.5 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320 },
  view: { stroke: '#ddd' },
};

/** Training entries in the order they ran (entries that recorded a curve). */
export function curveEntries(model: ReportModel): string[] {
  return [...new Set(model.curves.map((c) => c.entry))];
}

export function classEntries(model: ReportModel): string[] {
  return [...new Set(model.classes.map((c) => c.entry))];
}

/**
 * Learning curve of one training entry: a line per run. Drag to pan, wheel to zoom (an
 * interval bound to the scales), click a legend entry to single out a run (shift-click
 * for several), hover for the nearest point's numbers.
 */
export function curveSpec(model: ReportModel, entry: string): Spec {
  const runs = model.runs.map((r) => r.runId);
  const color = { field: 'run', type: 'nominal', sort: runs, title: 'run', legend: { orient: 'bottom', direction: 'vertical' } };
  return {
    $schema: SCHEMA,
    title: { text: `${entry}: validation accuracy`, anchor: 'start' },
    width: 600,
    height: 280,
    data: { name: 'curves', values: model.curves.filter((c) => c.entry === entry) },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'training step' },
      y: { field: 'valAccuracy', type: 'quantitative', title: 'validation accuracy', scale: { zero: false }, axis: { format: '.1%' } },
      color,
    },
    layer: [
      {
        params: [
          { name: 'zoom', select: { type: 'interval', encodings: ['x', 'y'] }, bind: 'scales' },
          { name: 'pick', select: { type: 'point', fields: ['run'] }, bind: 'legend' },
        ],
        mark: { type: 'line', strokeWidth: 1.8 },
        encoding: { opacity: { condition: { param: 'pick', value: 1 }, value: 0.1 } },
      },
      {
        params: [{ name: 'hover', select: { type: 'point', on: 'pointerover', nearest: true, clear: 'pointerout' } }],
        mark: { type: 'point', filled: true, size: 50 },
        encoding: {
          opacity: { condition: { param: 'hover', empty: false, value: 1 }, value: 0 },
          tooltip: [
            { field: 'run', type: 'nominal' },
            { field: 'step', type: 'quantitative' },
            { field: 'valAccuracy', type: 'quantitative', title: 'validation accuracy', format: '.2%' },
            { field: 'batchAccuracy', type: 'quantitative', title: 'batch accuracy', format: '.2%' },
            { field: 'loss', type: 'quantitative', format: '.4f' },
          ],
        },
      },
    ],
    config: CONFIG,
  };
}

/** Per-class test accuracy of one entry: a bar per class and run, the held-out class outlined and named. */
export function classSpec(model: ReportModel, entry: string): Spec {
  const runs = model.runs.map((r) => r.runId);
  return {
    $schema: SCHEMA,
    title: { text: `${entry}: test accuracy per class`, anchor: 'start' },
    width: 600,
    height: 220,
    data: { name: 'classes', values: model.classes.filter((c) => c.entry === entry) },
    transform: [{ calculate: "datum.heldOut ? datum.label + ' (held out)' : '' + datum.label", as: 'class' }],
    mark: { type: 'bar', strokeWidth: 2 },
    encoding: {
      x: { field: 'class', type: 'ordinal', title: 'class', sort: { field: 'label' }, axis: { labelAngle: 0 } },
      xOffset: { field: 'run', type: 'nominal', sort: runs },
      y: { field: 'accuracy', type: 'quantitative', title: 'test accuracy', scale: { domain: [0, 1] }, axis: { format: '.0%' } },
      color: { field: 'run', type: 'nominal', sort: runs, title: 'run', legend: { orient: 'bottom', direction: 'vertical' } },
      stroke: { condition: { test: 'datum.heldOut', value: '#111' }, value: null },
      tooltip: [
        { field: 'run', type: 'nominal' },
        { field: 'class', type: 'ordinal' },
        { field: 'accuracy', type: 'quantitative', format: '.2%' },
        { field: 'count', type: 'quantitative', title: 'test images' },
      ],
    },
    config: CONFIG,
  };
}

/** Confusion matrix of one entry, one panel per run: rows the true class, columns the prediction. */
export function confusionSpec(model: ReportModel, entry: string): Spec {
  const runs = model.runs.map((r) => r.runId).filter((id) => model.confusion.some((c) => c.entry === entry && c.run === id));
  return {
    $schema: SCHEMA,
    title: { text: `${entry}: confusion matrix (test set)`, anchor: 'start' },
    data: { name: 'confusion', values: model.confusion.filter((c) => c.entry === entry) },
    facet: { field: 'run', type: 'nominal', sort: runs, title: null, header: { labelLimit: 300 } },
    columns: 3,
    spec: {
      width: 230,
      height: 230,
      encoding: {
        x: { field: 'predicted', type: 'ordinal', title: 'predicted', axis: { labelAngle: 0, orient: 'top' } },
        y: { field: 'actual', type: 'ordinal', title: 'true class' },
      },
      layer: [
        {
          mark: 'rect',
          encoding: {
            color: { field: 'share', type: 'quantitative', title: 'share of class', scale: { scheme: 'blues', domain: [0, 1] }, legend: { format: '.0%' } },
            tooltip: [
              { field: 'actual', title: 'true class' },
              { field: 'predicted' },
              { field: 'count', type: 'quantitative' },
              { field: 'share', type: 'quantitative', format: '.2%' },
            ],
          },
        },
        {
          mark: { type: 'text', fontSize: 9 },
          transform: [{ filter: 'datum.count > 0' }],
          encoding: {
            text: { field: 'count', type: 'quantitative' },
            color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: '#222' },
          },
        },
      ],
    },
    config: CONFIG,
  };
}

/** Time per entry per run, stacked; cache hits pale (they cost the lookup, not the build). */
export function timingSpec(model: ReportModel): Spec {
  const runs = model.runs.map((r) => r.runId);
  const entries = [...new Set(model.timings.map((t) => t.entry))];
  return {
    $schema: SCHEMA,
    title: { text: 'Time per stage (this run)', anchor: 'start' },
    width: 600,
    height: { step: 26 },
    data: { name: 'timings', values: model.timings },
    transform: [{ calculate: 'datum.durationMs / 1000', as: 'seconds' }],
    mark: 'bar',
    encoding: {
      y: { field: 'run', type: 'nominal', sort: runs, title: null, axis: { labelLimit: 260 } },
      x: { field: 'seconds', type: 'quantitative', title: 'seconds', stack: 'zero' },
      color: { field: 'entry', type: 'nominal', sort: entries, title: 'entry' },
      opacity: { condition: { test: 'datum.cached', value: 0.35 }, value: 1 },
      tooltip: [
        { field: 'run', type: 'nominal' },
        { field: 'entry', type: 'nominal' },
        { field: 'seconds', type: 'quantitative', format: '.1f' },
        { field: 'cached', type: 'nominal', title: 'cache hit' },
        { field: 'buildMs', type: 'quantitative', title: 'artifact build (ms)', format: ',.0f' },
      ],
    },
    config: CONFIG,
  };
}

/**
 * Runs that repeat one experiment under different seeds: the mean validation curve with a
 * ±1 std band per training entry, and each seed's final metrics as dots around mean ± std.
 */
export function seedCurveSpec(model: ReportModel, group: number): Spec {
  const ids = new Set(model.seedGroups[group]!.runIds);
  return {
    $schema: SCHEMA,
    title: { text: `Seeds ${model.seedGroups[group]!.seeds.join(', ')}: mean validation accuracy ± 1 std`, anchor: 'start' },
    data: { name: 'seedCurves', values: model.curves.filter((c) => ids.has(c.run)) },
    facet: { field: 'entry', type: 'nominal', title: null },
    columns: 2,
    resolve: { scale: { x: 'independent', y: 'independent' } },
    spec: {
      width: 340,
      height: 220,
      encoding: { x: { field: 'step', type: 'quantitative', title: 'training step' } },
      layer: [
        { mark: { type: 'errorband', extent: 'stdev', opacity: 0.3 }, encoding: { y: { field: 'valAccuracy', type: 'quantitative', title: 'validation accuracy', scale: { zero: false }, axis: { format: '.1%' } } } },
        { mark: 'line', encoding: { y: { field: 'valAccuracy', type: 'quantitative', aggregate: 'mean' } } },
      ],
    },
    config: CONFIG,
  };
}

export function seedSpreadSpec(model: ReportModel, group: number): Spec {
  const g = model.seedGroups[group]!;
  const rows = g.metrics
    .filter((m) => /accuracy$/i.test(m.metric))
    .flatMap((m) => m.values.map((value, i) => ({ metric: `${m.entry}.${m.metric}`, value, seed: g.seeds[i] ?? null, mean: m.mean, std: m.std ?? 0 })));
  return {
    $schema: SCHEMA,
    title: { text: 'Accuracy per seed (dots), mean ± 1 std (bar)', anchor: 'start' },
    width: 520,
    height: { step: 28 },
    data: { name: 'seedSpread', values: rows },
    encoding: { y: { field: 'metric', type: 'nominal', title: null, axis: { labelLimit: 260 } } },
    layer: [
      {
        transform: [{ calculate: 'datum.mean - datum.std', as: 'lo' }, { calculate: 'datum.mean + datum.std', as: 'hi' }],
        mark: { type: 'rule', strokeWidth: 3, color: '#888' },
        encoding: { x: { field: 'lo', type: 'quantitative', aggregate: 'min', scale: { zero: false }, axis: { format: '.2%' }, title: 'value' }, x2: { field: 'hi', aggregate: 'max' } },
      },
      { mark: { type: 'tick', color: '#111', thickness: 2 }, encoding: { x: { field: 'mean', type: 'quantitative', aggregate: 'min' } } },
      {
        mark: { type: 'point', filled: true, size: 60 },
        encoding: { x: { field: 'value', type: 'quantitative' }, color: { field: 'seed', type: 'nominal' }, tooltip: [{ field: 'metric' }, { field: 'seed' }, { field: 'value', format: '.3%' }] },
      },
    ],
    config: CONFIG,
  };
}

/** Every chart of a report by element id. */
export function reportSpecs(model: ReportModel): Record<string, Spec> {
  const specs: Record<string, Spec> = {};
  for (const entry of curveEntries(model)) specs[`curves-${entry}`] = curveSpec(model, entry);
  for (const entry of classEntries(model)) {
    specs[`classes-${entry}`] = classSpec(model, entry);
    specs[`confusion-${entry}`] = confusionSpec(model, entry);
  }
  if (model.timings.length > 0) specs['timings'] = timingSpec(model);
  model.seedGroups.forEach((g, i) => {
    if (model.curves.some((c) => g.runIds.includes(c.run))) specs[`seed-curves-${i}`] = seedCurveSpec(model, i);
    if (g.metrics.some((m) => /accuracy$/i.test(m.metric))) specs[`seed-spread-${i}`] = seedSpreadSpec(model, i);
  });
  return specs;
}
