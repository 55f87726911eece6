export { BACKENDS, ConfigError, entriesFor, parseOverrideValue, pipelineJsonSchema, readConfigFile, resolveConfig } from './config.ts';
export type { BackendName, ConfigOverrides, ConfigProblem, ResolvedConfig, ResolvedEntry, StageRegistry, WrittenConfig } from './config.ts';
export { newRunId, runDir, runPipeline, summariseMetrics } from './runner.ts';
export type { RunOptions } from './runner.ts';
export type { CurvePoint, RunRecord, StageRunRecord } from './run-record.ts';
export { defaultRegistry } from './registry.ts';
export { GRAFT_VERSION } from './version.ts';
export { compareRuns, formatComparison, formatRunList, listRuns, plotCurves, resolveRunRefs, summariseRun } from './compare/index.ts';
export type {
  Comparison,
  ComparedRun,
  ComparisonFormat,
  EntryComparison,
  MetricComparison,
  MetricSpread,
  ParamDifference,
  RunList,
  RunListWarning,
  RunSummary,
  SeedGroup,
} from './compare/index.ts';
