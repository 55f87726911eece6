export { GraftError, UsageError, USAGE_EXIT_CODE, isGraftError, describeSystemError } from './errors.ts';
export type { ExitCode } from './errors.ts';
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
