/**
 * Metrics are whatever a stage reported; nothing here knows stage names. A numeric leaf
 * is a metric (nested objects flattened with dots: `rows.train`); arrays (curves,
 * confusion matrices) are plots, not table cells, and are skipped.
 */
export function flattenMetrics(metrics: unknown, prefix = ''): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (value: unknown, path: string): void => {
    if (typeof value === 'number') {
      if (Number.isFinite(value) && path) out.set(path, value);
      return;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
    for (const [key, child] of Object.entries(value)) walk(child, path ? `${path}.${key}` : key);
  };
  walk(metrics, prefix);
  return out;
}

/**
 * Params flattened to dot paths. Arrays and scalars are leaves (holdout: [9] is one
 * value), compared by their canonical JSON so `[9]` equals `[9]`.
 */
export function flattenParams(params: unknown, prefix: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const walk = (value: unknown, path: string): void => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
      for (const [key, child] of Object.entries(value)) walk(child, `${path}.${key}`);
      return;
    }
    out.set(path, value);
  };
  if (params !== null && typeof params === 'object' && !Array.isArray(params)) {
    for (const [key, child] of Object.entries(params)) walk(child, prefix ? `${prefix}.${key}` : key);
  }
  return out;
}

export type MetricKind = 'accuracy' | 'milliseconds' | 'count' | 'number';

/**
 * How to show a metric, from its name: accuracies as percentages (deltas in percentage
 * points), `*Ms` / `ms*` times in ms, s or min, integers as counts. JSON output stays raw.
 */
export function metricKind(name: string, value?: number): MetricKind {
  const leaf = name.slice(name.lastIndexOf('.') + 1);
  if (/accuracy$/i.test(leaf)) return 'accuracy';
  if (/Ms$|^ms[A-Z]/.test(leaf)) return 'milliseconds';
  if (value !== undefined && Number.isInteger(value)) return 'count';
  return 'number';
}

export function formatMetric(name: string, value: number | undefined): string {
  if (value === undefined) return '—';
  switch (metricKind(name, value)) {
    case 'accuracy':
      return `${(value * 100).toFixed(2)}%`;
    case 'milliseconds':
      return formatDuration(value);
    case 'count':
      return String(value);
    case 'number':
      return formatNumber(value);
  }
}

/** A difference in the metric's own unit: pp for accuracies, seconds for durations. */
export function formatDelta(name: string, delta: number | undefined): string {
  if (delta === undefined) return '';
  // ASCII signs: the output gets pasted into issues, shells and spreadsheets.
  const sign = delta > 0 ? '+' : delta < 0 ? '-' : '';
  const size = Math.abs(delta);
  switch (metricKind(name, delta)) {
    case 'accuracy':
      return `${sign}${(size * 100).toFixed(2)} pp`;
    case 'milliseconds':
      return `${sign}${formatDuration(size)}`;
    case 'count':
      return `${sign}${size}`;
    case 'number':
      return `${sign}${formatNumber(size)}`;
  }
}

/** A spread (std) in the metric's unit, without a sign. */
export function formatSpread(name: string, spread: number | undefined): string {
  if (spread === undefined) return '—';
  switch (metricKind(name)) {
    case 'accuracy':
      return `${(spread * 100).toFixed(2)} pp`;
    case 'milliseconds':
      return formatDuration(spread);
    default:
      return formatNumber(spread);
  }
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${formatNumber(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function formatNumber(value: number): string {
  if (value === 0) return '0';
  const size = Math.abs(value);
  if (size >= 1000) return value.toFixed(0);
  if (size >= 1) return String(Number(value.toFixed(3)));
  return String(Number(value.toPrecision(4)));
}
