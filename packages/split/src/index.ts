export { planSplit, splitParams, splitStage } from './split.ts';
export type { SplitParams } from './split.ts';
export { SPLIT_ERROR_CODES } from './error-codes.ts';
export type { SplitErrorCode } from './error-codes.ts';
