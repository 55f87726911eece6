import rootPackage from '../../../package.json' with { type: 'json' };

/** graft's version, from the root package.json, recorded in every manifest and run (inlined by the CLI bundle). */
export const GRAFT_VERSION: string = rootPackage.version;
