export { phaseTwoParams, phaseTwoStage } from './phase-two.ts';
export type { PhaseTwoMetricsFile, PhaseTwoParams } from './phase-two.ts';
export { PHASE_TWO_ERROR_CODES } from './error-codes.ts';
export type { PhaseTwoErrorCode } from './error-codes.ts';
