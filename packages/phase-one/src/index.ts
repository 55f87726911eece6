export { METRICS_FILE, MODEL_DIR, TRAINING_LIMITS, perClassByLabel, phaseOneParams, phaseOneStage, runFingerprint, testClasses, writeTrainingMetrics } from './phase-one.ts';
export type { PhaseOneMetricsFile, PhaseOneParams, TestClasses } from './phase-one.ts';
