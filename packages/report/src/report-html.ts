import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { REPORT_ERROR_CODES } from './error-codes.ts';
import { GraftError, UsageError, atomicWriteFile, describeSystemError } from '@graft/core';
import { shortDate, type RunRecord } from '@graft/runs';
import { escapeHtml, lineageSvg } from './lineage.ts';
import { formatDelta, formatDuration, formatMetric, formatSpread } from './metrics.ts';
import { buildReportModel, storeLookup, type ArtifactLookup, type ReportModel } from './report-model.ts';
import { classEntries, curveEntries, reportSpecs } from './report-specs.ts';

const require = createRequire(import.meta.url);

/** Browser bundles served by `graft ui` and inlined into reports: name -> file in node_modules. */
export const BROWSER_LIBRARIES = {
  'vega.js': ['vega', 'build/vega.min.js'],
  'vega-lite.js': ['vega-lite', 'build/vega-lite.min.js'],
  'vega-embed.js': ['vega-embed', 'build/vega-embed.min.js'],
  'tfjs.js': ['@tensorflow/tfjs', 'dist/tf.min.js'],
} as const;
export type BrowserLibrary = keyof typeof BROWSER_LIBRARIES;

/**
 * The report's own browser code and styles (packages/report/assets), found on first use:
 * every graft command imports this package (runs ls, compare), and only report and ui read them.
 */
export function assetsDir(): string {
  return join(packageDir('@graft/report'), 'assets');
}

const cache = new Map<string, string>();

async function cachedText(path: string): Promise<string> {
  let text = cache.get(path);
  if (text === undefined) {
    text = await readFile(path, 'utf8');
    cache.set(path, text);
  }
  return text;
}

/**
 * A package's directory: its `exports` hide the build folder from require.resolve, so
 * resolve the main entry and walk up to the package.json that names the package.
 */
function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  for (;;) {
    try {
      const manifest = require(join(dir, 'package.json')) as { name?: string };
      if (manifest.name === name) return dir;
    } catch {
      // no package.json at this level
    }
    const parent = dirname(dir);
    if (parent === dir) throw new GraftError(REPORT_ERROR_CODES.assetMissing, `Cannot find the ${name} package; run npm ci.`);
    dir = parent;
  }
}

export function browserLibraryPath(name: BrowserLibrary): string {
  const [pkg, file] = BROWSER_LIBRARIES[name];
  return join(packageDir(pkg), file);
}

export async function browserLibrary(name: BrowserLibrary): Promise<string> {
  return cachedText(browserLibraryPath(name));
}

export async function asset(name: 'report.css' | 'report-client.js' | 'ui.js' | 'ui.css'): Promise<string> {
  return cachedText(join(assetsDir(), name));
}

/** Text inside <script>: a literal `</script` would end the element early. */
function scriptText(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1');
}

/** JSON inside <script type="application/json">, safe from `</script>` and `<!--` in strings. */
export function jsonScriptText(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

const fmtParam = (v: unknown) => (v === null || v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v));

function table(headers: string[], rows: string[][], className = ''): string {
  return `<table class="${className}"><thead><tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function runDuration(run: ReportModel['runs'][number]): string {
  if (!run.finishedAt) return run.status === 'running' ? 'running…' : '—';
  return formatDuration(Date.parse(run.finishedAt) - Date.parse(run.createdAt));
}

function chart(id: string): string {
  return `<div class="chart" id="chart-${escapeHtml(id)}" data-chart="${escapeHtml(id)}"></div>`;
}

/**
 * The report's body (everything below the page header), as HTML; charts are placeholders
 * (`data-chart`) that report-client.js fills from `specs`. The UI's compare view shows
 * the same body, so the file and the live view never drift apart.
 */
export function reportBody(model: ReportModel): { html: string; specs: Record<string, unknown> } {
  const specs = reportSpecs(model);
  const ids = model.runs.map((r) => r.runId);
  const e = escapeHtml;
  const parts: string[] = [];

  parts.push(`<section id="runs"><h2>Runs</h2>${table(
    ['run', 'started (UTC)', 'config', 'target', 'seed', 'backend', 'status', 'duration'],
    model.runs.map((r) => [
      `<code>${e(r.runId)}</code>`,
      e(shortDate(r.createdAt)),
      e(r.configName),
      e(r.target),
      r.seed === null ? '—' : String(r.seed),
      e(r.backendUsed ?? r.backendRequested),
      `<span class="status ${e(r.status)}">${e(r.status)}</span>${r.error ? ` <span class="dim">${e(r.error.stage ? `${r.error.stage}: ` : '')}${e(r.error.message)}</span>` : ''}`,
      e(runDuration(r)),
    ]),
  )}</section>`);

  parts.push(
    `<section id="params"><h2>Params that differ</h2>${
      model.params.length
        ? table(['param', ...ids], model.params.map((p) => [`<code>${e(p.path)}</code>`, ...p.values.map((v) => e(fmtParam(v)))]))
        : `<p class="dim">${model.runs.length > 1 ? 'None: every run used the same params.' : 'One run: nothing to compare.'}</p>`
    }</section>`,
  );

  const labels = new Map(model.runs.map((r, i) => [r.runId, model.runs.length > 1 ? `#${i + 1}` : 'this run']));
  parts.push(
    `<section id="lineage"><h2>Artifact lineage</h2><p class="dim">One box per artifact key; same key = same stage, version, params and inputs. ` +
      `<span class="swatch shared"></span> shared by every run · <span class="swatch rebuilt"></span> differs between runs. ` +
      `${model.runs.length > 1 ? model.runs.map((r) => `${e(labels.get(r.runId)!)} = <code>${e(r.runId)}</code>`).join(', ') : ''}</p>` +
      `<div class="scroll">${lineageSvg(model.lineage, labels)}</div></section>`,
  );

  parts.push(
    `<section id="metrics"><h2>Metrics</h2>${
      model.metrics.length
        ? table(
            ['entry', 'metric', ...ids],
            model.metrics.map((m) => [
              e(m.entry),
              e(m.metric),
              ...m.values.map((v, i) => {
                const delta = m.deltas[i];
                const d = i > 0 && delta !== null && delta !== undefined && delta !== 0 ? ` <span class="dim">(${e(formatDelta(m.metric, delta))})</span>` : '';
                return `<span class="num" data-metric="${e(`${m.entry}.${m.metric}`)}" data-run="${e(ids[i]!)}" data-value="${v ?? ''}">${e(formatMetric(m.metric, v ?? undefined))}</span>${d}`;
              }),
            ]),
            'metrics',
          )
        : '<p class="dim">No numeric metrics recorded.</p>'
    }${model.runs.length > 1 ? `<p class="dim">Deltas vs ${e(ids[0]!)}; metrics of artifacts every run shares are left out.</p>` : ''}</section>`,
  );

  const curves = curveEntries(model);
  parts.push(
    `<section id="curves"><h2>Learning curves</h2><p class="dim">Drag to pan, scroll to zoom, double-click to reset; click a run in the legend to single it out (shift-click for more); hover for values.</p>${
      curves.length ? curves.map((entry) => chart(`curves-${entry}`)).join('') : '<p class="dim">No training entry has recorded a curve yet.</p>'
    }</section>`,
  );

  const classes = classEntries(model);
  const heldOut = [...new Set(model.classes.filter((c) => c.heldOut).map((c) => c.label))];
  parts.push(
    `<section id="classes"><h2>Per-class test accuracy</h2><p class="dim">${
      heldOut.length ? `Held-out class${heldOut.length > 1 ? 'es' : ''} ${heldOut.join(', ')} (outlined): never seen in phase one, learnt by the grafted head.` : ''
    }</p>${classes.length ? classes.map((entry) => chart(`classes-${entry}`)).join('') : '<p class="dim">No per-class results recorded (runs from before graft recorded them, with their artifacts gone).</p>'}</section>`,
  );
  parts.push(`<section id="confusion"><h2>Confusion matrices</h2>${classes.map((entry) => chart(`confusion-${entry}`)).join('') || '<p class="dim">None recorded.</p>'}</section>`);

  if (model.seedGroups.length) {
    parts.push(
      `<section id="seeds"><h2>Across seeds</h2>${model.seedGroups
        .map(
          (g, i) =>
            `<h3>Seeds ${e(g.seeds.map((s) => (s === null ? '—' : String(s))).join(', '))} <span class="dim">(${g.runIds.length} runs, same params otherwise)</span></h3>` +
            table(
              ['entry', 'metric', 'mean ± std', 'min', 'max', 'n'],
              g.metrics.map((m) => [
                e(m.entry),
                e(m.metric),
                `<span data-seed-metric="${e(`${m.entry}.${m.metric}`)}" data-mean="${m.mean}" data-std="${m.std ?? ''}">${e(formatMetric(m.metric, m.mean))} ± ${e(formatSpread(m.metric, m.std ?? undefined))}</span>`,
                e(formatMetric(m.metric, m.min)),
                e(formatMetric(m.metric, m.max)),
                String(m.n),
              ]),
            ) +
            (specs[`seed-curves-${i}`] ? chart(`seed-curves-${i}`) : '') +
            (specs[`seed-spread-${i}`] ? chart(`seed-spread-${i}`) : ''),
        )
        .join('')}</section>`,
    );
  }

  parts.push(
    `<section id="timings"><h2>Timings per stage</h2>${specs['timings'] ? chart('timings') : ''}${table(
      ['run', 'entry', 'this run', 'cache hit', 'artifact build'],
      model.timings.map((t) => [`<code>${e(t.run)}</code>`, e(t.entry), e(formatDuration(t.durationMs)), t.cached ? 'yes' : 'no', t.buildMs === null ? '—' : e(formatDuration(t.buildMs))]),
    )}</section>`,
  );

  parts.push(
    `<section id="environment"><h2>Environment and provenance</h2>${table(
      ['run', 'graft', 'node', 'tfjs', 'backend (requested → used)', 'git commit', 'host', 'config'],
      model.runs.map((r) => [
        `<code>${e(r.runId)}</code>`,
        e(r.versions.graft),
        e(r.versions.node),
        e(r.versions.tfjs ?? '—'),
        e(`${r.backendRequested} → ${r.backendUsed ?? '(all cached)'}`),
        r.gitCommit ? `<code>${e(r.gitCommit.slice(0, 12))}</code>` : '—',
        e(r.hostname ?? '—'),
        e(r.configPath),
      ]),
    )}<p class="dim">Each artifact's producer (graft, tfjs, backend, commit) is in its lineage box; hover it for the full record.</p></section>`,
  );
  return { html: parts.join('\n'), specs };
}

/**
 * One self-contained HTML file: styles, vega, vega-lite, vega-embed, the client script and
 * every datum inline; it loads nothing from the network and opens from disk or an attachment.
 */
export async function renderReportHtml(model: ReportModel): Promise<string> {
  const { html, specs } = reportBody(model);
  const [css, vega, vegaLite, vegaEmbed, client] = await Promise.all([
    asset('report.css'),
    browserLibrary('vega.js'),
    browserLibrary('vega-lite.js'),
    browserLibrary('vega-embed.js'),
    asset('report-client.js'),
  ]);
  const title = model.runs.length === 1 ? `graft report: ${model.runs[0]!.runId}` : `graft report: ${model.runs.length} runs`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${css}</style>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1><p class="dim">Generated ${escapeHtml(model.generatedAt)} by graft. Self-contained: open it anywhere, no network needed.</p>
<nav>${['runs', 'params', 'lineage', 'metrics', 'curves', 'classes', 'confusion', ...(model.seedGroups.length ? ['seeds'] : []), 'timings', 'environment'].map((s) => `<a href="#${s}">${s}</a>`).join(' · ')}</nav></header>
<main id="report">
${html}
</main>
<script type="application/json" id="graft-specs">${jsonScriptText(specs)}</script>
<script type="application/json" id="graft-model">${jsonScriptText(model)}</script>
<script>${scriptText(vega)}</script>
<script>${scriptText(vegaLite)}</script>
<script>${scriptText(vegaEmbed)}</script>
<script>${scriptText(client)}</script>
<script>graftReport.renderCharts(document.getElementById('report'), JSON.parse(document.getElementById('graft-specs').textContent));</script>
</body>
</html>
`;
}

/**
 * `graft report <run>... --out report.html`: written via a temp file, so a failure never
 * leaves half a report. Returns the file's size in bytes.
 */
export async function writeReport(runs: readonly RunRecord[], storeRoot: string, outPath: string, lookup: ArtifactLookup = storeLookup(storeRoot)): Promise<number> {
  if (!/\.html?$/i.test(outPath)) throw new UsageError(REPORT_ERROR_CODES.reportFormat, `Cannot write the report to ${outPath}: the file name must end in .html.`);
  const html = await renderReportHtml(await buildReportModel(runs, lookup));
  const bytes = Buffer.from(html, 'utf8');
  try {
    await atomicWriteFile(outPath, bytes);
  } catch (error) {
    throw new GraftError(REPORT_ERROR_CODES.reportWriteFailed, `Cannot write the report: ${describeSystemError(error, outPath)}.`, { cause: error });
  }
  return bytes.length;
}
