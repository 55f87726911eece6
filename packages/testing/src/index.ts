// Test fixtures only: imported by *.test.ts files (a devDependency everywhere), never by
// runtime code, so stage packages do not pull ingest, split or pino in at run time.
export { syntheticImages } from './synthetic.ts';
export type { SyntheticImages } from './synthetic.ts';
export { inputArtifact, mnistSliceSplit, splitArtifact, stageContext, syntheticSplit } from './stages.ts';
export type { ContextOptions } from './stages.ts';
