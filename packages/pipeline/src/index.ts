export { ConfigError, entriesFor, parseOverrideValue, pipelineJsonSchema, readConfigFile, resolveConfig } from './config.ts';
export type { ConfigOverrides, ConfigProblem, ResolvedConfig, ResolvedEntry, StageRegistry, WrittenConfig } from './config.ts';
export { keySpecFor, runPipeline, summariseMetrics } from './runner.ts';
export type { RunOptions, SharedArtifacts } from './runner.ts';
export { GRAFT_VERSION } from './version.ts';
export { PIPELINE_ERROR_CODES } from './error-codes.ts';
export type { PipelineErrorCode } from './error-codes.ts';
