export {
  IDX_ERROR_CODES,
  MAX_IDX_BYTES,
  asIdxImages,
  asIdxLabels,
  decodeIdx,
  encodeIdx,
  findIdxFile,
  formatDims,
  isGzip,
  parseIdx,
  readIdxFile,
  readIdxFileContents,
} from './idx.ts';
export type { IdxArray, IdxFileContents, IdxImages } from './idx.ts';
export {
  IMAGE_COLUMN,
  INDEX_COLUMN,
  LABEL_COLUMN,
  makeImageTable,
  readImageTable,
  selectRows,
  writeImageTable,
} from './table.ts';
export type { ImageTable } from './table.ts';
export { contiguousBatches, epochPermutation } from './batches.ts';
export { SPLIT_NAMES, countLabels } from './splits.ts';
export type { SplitName } from './splits.ts';
export { writeIdxSlice } from './idx-slice.ts';
export { DATASET_SUMMARY_FILE, datasetSplitPath, readDatasetSplit, writeDatasetSplit, writeDatasetSummary } from './formats/dataset.ts';
export type { DatasetSummary, SourceFile } from './formats/dataset.ts';
export { SPLIT_INFO_FILE, SUBSETS, readSplitData, readSplitInfo, splitDataPath, splitInfoSchema, writeSplitData, writeSplitInfo } from './formats/split.ts';
export type { SplitInfo, Subset } from './formats/split.ts';
export { DATA_ERROR_CODES } from './error-codes.ts';
export type { DataErrorCode } from './error-codes.ts';
export { syntheticImages } from './synthetic.ts';
export type { SyntheticImages } from './synthetic.ts';
