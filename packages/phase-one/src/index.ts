export { phaseOneParams, phaseOneStage } from './phase-one.ts';
export type { PhaseOneMetricsFile, PhaseOneParams } from './phase-one.ts';
