// @ts-check
/**
 * Nx plugin: every workspace package under packages/ gets the same targets, inferred, so
 * a new package has them the moment its package.json exists:
 *
 * - `typecheck`  the package's .ts files with the root compiler options (typecheck.mjs)
 * - `test`       its test files, both tiers (`vitest run <dir>/`; see vitest.config.ts)
 * - `lint`       ESLint on the package, when the root has an eslint.config.*
 * - `build`      `node build.mjs`, for a package that has one (the CLI bundle)
 *
 * Caching, inputs and outputs live in nx.json `targetDefaults`, next to the named inputs
 * they use. (Stage targets of the `pipeline` project are a different matter: plugin.cjs,
 * DESIGN.md §6.)
 */
const { existsSync } = require('node:fs');
const { dirname, join } = require('node:path');

const ESLINT_CONFIGS = ['eslint.config.js', 'eslint.config.mjs', 'eslint.config.cjs', 'eslint.config.ts'];

/** @param {string} command */
const run = (command) => ({ executor: 'nx:run-commands', options: { command, cwd: '{workspaceRoot}' } });

/** @type {import('nx/src/devkit-exports').CreateNodesV2} */
const createNodesV2 = [
  'packages/*/package.json',
  (manifests, _options, context) => {
    const lint = ESLINT_CONFIGS.some((file) => existsSync(join(context.workspaceRoot, file)));
    return manifests.map((manifest) => {
      const root = dirname(manifest);
      /** @type {Record<string, any>} */
      const targets = {
        typecheck: run(`node tools/nx-graft/typecheck.mjs ${root}`),
        test: run(`vitest run --passWithNoTests ${root}/`),
      };
      if (lint) targets.lint = run(`eslint ${root}`);
      if (existsSync(join(context.workspaceRoot, root, 'build.mjs'))) targets.build = run(`node ${root}/build.mjs`);
      return [manifest, { projects: { [root]: { targets } } }];
    });
  },
];

module.exports = { createNodesV2, name: 'nx-graft-packages' };
