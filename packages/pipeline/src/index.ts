export { ConfigError, MAX_GRID_VALUES, MAX_SWEEP_RUNS, entriesFor, parseOverrideValue, pipelineJsonSchema, readConfigFile, resolveConfig } from './config.ts';
export type { ConfigOverrides, ConfigProblem, GridAxis, GridOverride, ResolvedConfig, ResolvedEntry, ResolvedSweep, StageRegistry, WrittenConfig } from './config.ts';
export { gitCommit, keySpecFor, materialiseEntry, openInputArtifact, runPipeline, summariseMetrics } from './runner.ts';
export type { EntryBuild, RunOptions, SharedArtifacts } from './runner.ts';
export { GRAFT_VERSION } from './version.ts';
export { PIPELINE_ERROR_CODES } from './error-codes.ts';
export type { PipelineErrorCode } from './error-codes.ts';
