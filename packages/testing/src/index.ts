// Test fixtures only: imported by *.test.ts files (a devDependency everywhere), never by
// runtime code, so stage packages do not pull ingest, split or pino in at run time.
export { inputArtifact, mnistSliceSplit, splitArtifact, stageContext, syntheticSplit } from './stages.ts';
export type { ContextOptions } from './stages.ts';
export { trainedModelArtifact, widenedHeadArtifact } from './models.ts';
export type { TrainedModelOptions } from './models.ts';
export { tinyChainConfig, writeMnistSlice, writeTinyChain } from './tiny-chain.ts';
export type { TinyChainEntry, TinyChainOptions } from './tiny-chain.ts';
