export { GraftError, UsageError, USAGE_EXIT_CODE, isGraftError, describeSystemError } from './errors.ts';
export type { ErrorCodeOf, ExitCode } from './errors.ts';
export { BACKEND_REQUESTS, COMPUTE_BACKENDS, isBackendRequest } from './backends.ts';
export type { BackendRequest, ComputeBackend } from './backends.ts';
export { CANONICAL_JSON_ERROR_CODES, canonicalJson } from './canonical-json.ts';
export type { CanonicalJsonErrorCode } from './canonical-json.ts';
export {
  FileRefusedError,
  IO_ERROR_CODES,
  JsonFileError,
  atomicWriteFile,
  describeFileType,
  errnoCode,
  fsyncDir,
  parseJsonBytes,
  pidAlive,
  readBoundedFile,
  readJsonFile,
  syncHandle,
} from './io.ts';
export type { IoErrorCode, ReadJsonOptions } from './io.ts';
export { formatJsonPath, formatProblems, formatZodIssues, zodProblems } from './zod-issues.ts';
export type { Problem } from './zod-issues.ts';
export { entryPointArgs, entryPointUrl, startWorker } from './entry-points.ts';
export { ARTIFACT_KINDS, defineStage } from './stage.ts';
export type {
  ArtifactKind,
  InputSlots,
  SelectedBackend,
  CurvePoint,
  InputArtifact,
  ProgressReporter,
  StageContext,
  StageDefinition,
  StageResult,
} from './stage.ts';
// The manifest schema's values live at `@graft/core/manifest`: importing them from here would
// load zod at every command's start-up (packages/cli/src/build.e2e.test.ts guards that).
export type { ArtifactFile, ArtifactManifest, Producer } from './manifest.ts';
export { silentProgress } from './progress.ts';
export { MAX_SEED, Rng } from './random.ts';
export type { RngState } from './random.ts';
