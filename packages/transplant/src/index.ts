export { TRANSPLANT_FILE, columnMapping, graftHeadKernel, transplantParams, transplantStage } from './transplant.ts';
export type { CopiedColumn, TransplantMetricsFile, TransplantParams } from './transplant.ts';
