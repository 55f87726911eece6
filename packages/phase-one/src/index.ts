export { METRICS_FILE, MODEL_DIR, perClassByLabel, phaseOneParams, phaseOneStage, runFingerprint } from './phase-one.ts';
export type { PhaseOneMetricsFile, PhaseOneParams } from './phase-one.ts';
