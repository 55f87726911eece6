export { TRANSPLANT_FILE, columnMapping, graftHeadKernel, transplantParams, transplantStage } from './transplant.ts';
export type { CopiedColumn, TransplantMetricsFile, TransplantParams } from './transplant.ts';
export { TRANSPLANT_ERROR_CODES } from './error-codes.ts';
export type { TransplantErrorCode } from './error-codes.ts';
