export { GraftError, UsageError, USAGE_EXIT_CODE, isGraftError, describeSystemError } from './errors.ts';
export type { ErrorCodeOf, ExitCode } from './errors.ts';
export { BACKEND_REQUESTS, COMPUTE_BACKENDS, isBackendRequest } from './backends.ts';
export type { BackendRequest, ComputeBackend } from './backends.ts';
export { canonicalJson } from './canonical-json.ts';
export { IO_ERROR_CODES, JsonFileError, atomicWriteFile, errnoCode, fsyncDir, parseJsonBytes, pidAlive, readJsonFile, syncHandle } from './io.ts';
export type { IoErrorCode, ReadJsonOptions } from './io.ts';
export { formatJsonPath, formatProblems, formatZodIssues, zodProblems } from './zod-issues.ts';
export type { Problem } from './zod-issues.ts';
export { defineStage } from './stage.ts';
export type {
  ArtifactFile,
  ArtifactManifest,
  CurvePoint,
  InputArtifact,
  Producer,
  ProgressReporter,
  StageContext,
  StageDefinition,
  StageResult,
} from './stage.ts';
export { silentProgress } from './progress.ts';
export { Rng } from './random.ts';
export type { RngState } from './random.ts';
