export { METRICS_FILE, MODEL_DIR, perClassByLabel, phaseOneParams, phaseOneStage, runFingerprint, writeTrainingMetrics } from './phase-one.ts';
export type { PhaseOneMetricsFile, PhaseOneParams } from './phase-one.ts';
