export { phaseOneParams, phaseOneStage } from './phase-one.ts';
export type { PhaseOneMetricsFile, PhaseOneParams } from './phase-one.ts';
export { PHASE_ONE_ERROR_CODES } from './error-codes.ts';
export type { PhaseOneErrorCode } from './error-codes.ts';
