export { IDX_FILES, MNIST_DATA_SOURCE, ingestParams, ingestStage, resolveSourceDir } from './ingest.ts';
export type { IngestParams } from './ingest.ts';
export { INGEST_ERROR_CODES } from './error-codes.ts';
export type { IngestErrorCode } from './error-codes.ts';
