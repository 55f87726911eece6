export {
  SPLIT_INFO_FILE,
  SUBSETS,
  planSplit,
  readSplit,
  readSplitData,
  splitDataPath,
  splitParams,
  splitStage,
} from './split.ts';
export type { SplitInfo, SplitParams, Subset } from './split.ts';
