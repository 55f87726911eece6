import { createRequire } from 'node:module';

/** graft's version, from the root package.json, recorded in every manifest and run. */
export const GRAFT_VERSION: string = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
