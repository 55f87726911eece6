export { IDX_FILES, MNIST_DATA_SOURCE, ingestDataPath, ingestParams, ingestStage, resolveSourceDir } from './ingest.ts';
export type { IngestParams, IngestSummary, SourceFile } from './ingest.ts';
