export { phaseTwoParams, phaseTwoStage } from './phase-two.ts';
export type { PhaseTwoMetricsFile, PhaseTwoParams } from './phase-two.ts';
