import type { BenchResult, StepTiming } from './bench.ts';

const ms = (x: number | null | undefined, digits = 1) => (x === null || x === undefined ? '-' : `${x.toFixed(digits)} ms`);

function step(t: StepTiming | null | undefined): string {
  return t ? `${t.msPerStep.toFixed(1)} / ${t.meanMs.toFixed(1)} / ${t.p90Ms.toFixed(1)} ms` : '-';
}

/** A readable table, one column per backend; figures are medians unless the row says otherwise. */
export function formatBenchTable(results: readonly BenchResult[]): string {
  const first = results[0];
  if (!first) return 'no backends measured\n';
  const batchSizes = [...new Set(results.flatMap((r) => r.batchScaling.map((s) => s.batchSize)))];
  const b = first.phaseOne?.batchSize ?? first.phaseTwo?.batchSize;
  const rows: Array<[string, ...string[]]> = [
    ['backend', ...results.map((r) => (r.requested === r.backend ? r.backend : `${r.backend} (${r.requested})`))],
    [`phase one step${b ? `, batch ${b}` : ''} (median / mean / p90)`, ...results.map((r) => step(r.phaseOne))],
    [`phase two step, head only (median / mean / p90)`, ...results.map((r) => step(r.phaseTwo))],
    ['validation pass per 1,000 images', ...results.map((r) => ms(r.evalMsPer1k, 0))],
    ['ingest, full MNIST', ...results.map((r) => ms(r.ingestMs, 0))],
    ['peak RSS', ...results.map((r) => (r.peakRssMb === null ? '-' : `${r.peakRssMb.toFixed(0)} MB`))],
    ...batchSizes.map((size): [string, ...string[]] => [
      `phase one step, batch ${size} (per image)`,
      ...results.map((r) => {
        const s = r.batchScaling.find((x) => x.batchSize === size);
        return s ? `${s.msPerStep.toFixed(1)} ms (${s.msPerImage.toFixed(2)})` : '-';
      }),
    ]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  const line = (row: readonly string[]) => row.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('   ').trimEnd();
  const out = rows.map(line);
  out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('   '));
  const notes = results.flatMap((r) => {
    if (!r.available) return [`${r.requested}: unavailable: ${r.reason}`];
    return r.error ? [`${r.backend}: ${r.error}`] : [];
  });
  const s = first;
  out.push(
    '',
    `${s.steps} timed steps after ${s.warmupSteps} warm-up; real MNIST; tfjs ${s.tfjsVersion}, node ${s.nodeVersion}, ` +
      `${s.machine.cpus} CPUs (${s.machine.cpuModel}), load average ${s.machine.loadAverage1m.toFixed(2)} at start`,
    ...notes,
  );
  return `${out.join('\n')}\n`;
}
