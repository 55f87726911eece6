export { METRICS_FILE, MODEL_DIR, perClassByLabel, phaseOneParams, phaseOneStage, runFingerprint, testClasses, writeTrainingMetrics } from './phase-one.ts';
export type { PhaseOneMetricsFile, PhaseOneParams, TestClasses } from './phase-one.ts';
