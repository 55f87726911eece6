import type { LineageNode } from './report-model.ts';
import { formatDuration } from './metrics.ts';

const BOX_W = 250;
const BOX_H = 92;
const GAP_X = 60;
const GAP_Y = 18;
const PAD = 10;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * The artifact lineage as an SVG: one box per artifact key (a key several runs used is one
 * box), columns by depth in the DAG (longest path from a source), edges from each input.
 * Shared artifacts (used by every run) are green, the others orange, so what a change
 * rebuilt stands out as in `dvc dag`.
 */
export function lineageSvg(nodes: readonly LineageNode[], runLabels: ReadonlyMap<string, string>): string {
  const byKey = new Map(nodes.map((n) => [n.key, n]));
  const depth = new Map<string, number>();
  const depthOf = (key: string, seen: Set<string> = new Set()): number => {
    const known = depth.get(key);
    if (known !== undefined) return known;
    if (seen.has(key)) return 0; // a cycle cannot happen with content keys; never loop on bad data
    seen.add(key);
    const node = byKey.get(key);
    const inputs = (node?.inputs ?? []).filter((k) => byKey.has(k));
    const d = inputs.length === 0 ? 0 : 1 + Math.max(...inputs.map((k) => depthOf(k, seen)));
    depth.set(key, d);
    return d;
  };
  const columns: LineageNode[][] = [];
  for (const node of nodes) (columns[depthOf(node.key)] ??= []).push(node);
  const position = new Map<string, { x: number; y: number }>();
  columns.forEach((column, c) => column.forEach((node, r) => position.set(node.key, { x: PAD + c * (BOX_W + GAP_X), y: PAD + r * (BOX_H + GAP_Y) })));
  const width = PAD * 2 + columns.length * BOX_W + Math.max(0, columns.length - 1) * GAP_X;
  const height = PAD * 2 + Math.max(1, ...columns.map((c) => c.length)) * (BOX_H + GAP_Y) - GAP_Y;

  const edges: string[] = [];
  for (const node of nodes) {
    const to = position.get(node.key)!;
    for (const input of node.inputs) {
      const from = position.get(input);
      if (!from) continue;
      const x1 = from.x + BOX_W;
      const y1 = from.y + BOX_H / 2;
      const x2 = to.x;
      const y2 = to.y + BOX_H / 2;
      const mid = (x1 + x2) / 2;
      edges.push(`<path class="edge" d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 6},${y2}" marker-end="url(#arrow)"/>`);
    }
  }
  const label = (id: string) => runLabels.get(id) ?? id;
  const boxes = nodes.map((node) => {
    const { x, y } = position.get(node.key)!;
    const producer = node.producer ?? {};
    const env = [producer['backend'], producer['tfjs'] ? `tfjs ${String(producer['tfjs'])}` : undefined, producer['graft'] ? `graft ${String(producer['graft'])}` : undefined]
      .filter((v) => v !== undefined && v !== '')
      .join(' · ');
    const usage = node.shared
      ? `shared by all runs${node.builtIn.length ? `; built in ${node.builtIn.map(label).join(', ')}` : ''}`
      : `${node.builtIn.length ? `built in ${node.builtIn.map(label).join(', ')}` : ''}${node.cachedIn.length ? `${node.builtIn.length ? '; ' : ''}cached in ${node.cachedIn.map(label).join(', ')}` : ''}`;
    const lines = [
      `<text x="${x + 10}" y="${y + 19}" class="title">${escapeHtml(node.entries.join(', '))}${node.entries.join(',') !== node.stage ? ` <tspan class="dim">(${escapeHtml(node.stage)})</tspan>` : ''}</text>`,
      `<text x="${x + 10}" y="${y + 36}" class="mono">${escapeHtml(node.key.slice(0, 16))}</text>`,
      `<text x="${x + 10}" y="${y + 52}">${escapeHtml(node.durationMs === null ? 'build time unknown' : `built in ${formatDuration(node.durationMs)}`)}${node.inStore ? '' : ' · not in store'}</text>`,
      `<text x="${x + 10}" y="${y + 68}" class="dim">${escapeHtml(truncate(env || 'producer unknown', 40))}</text>`,
      `<text x="${x + 10}" y="${y + 84}" class="dim">${escapeHtml(truncate(usage, 42))}</text>`,
    ];
    const title = `${node.stage}/${node.key}\n${usage}\nproducer: ${JSON.stringify(node.producer)}`;
    return `<g class="node ${node.shared ? 'shared' : 'rebuilt'}" data-key="${escapeHtml(node.key)}"><title>${escapeHtml(title)}</title><rect x="${x}" y="${y}" width="${BOX_W}" height="${BOX_H}" rx="6"/>${lines.join('')}</g>`;
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="artifact lineage">` +
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs>' +
    edges.join('') +
    boxes.join('') +
    '</svg>'
  );
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
