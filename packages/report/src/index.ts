export { formatRunList, summariseRun } from './list.ts';
export type { RunSummary } from './list.ts';
export { compareRuns } from './compare.ts';
export type { Comparison, ComparedRun, EntryComparison, MetricComparison, MetricSpread, ParamDifference, SeedGroup } from './compare.ts';
export { formatComparison } from './format.ts';
export type { ComparisonFormat } from './format.ts';
export { plotCurves } from './plot.ts';
