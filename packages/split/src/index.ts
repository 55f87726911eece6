export { planSplit, splitParams, splitStage } from './split.ts';
export type { SplitParams } from './split.ts';
