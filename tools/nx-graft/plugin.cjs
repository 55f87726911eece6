// @ts-check
/**
 * Nx plugin: infers the `pipeline` project's targets from the pipeline config, so the
 * Nx task graph is the config's DAG (`nx graph` shows the chain) and nobody keeps a
 * project.json in sync by hand.
 *
 * - `pipelines/mnist-transfer.json` (the default config) gives one target per entry, each
 *   running `graft run <entry>` with `dependsOn` wired from the entry's inputs (for single
 *   stages and `nx graph`), plus `all`: `graft run all`, the whole DAG in one process.
 * - Every sibling `pipelines/mnist-transfer.<variant>.json` becomes an Nx configuration
 *   `<variant>` of those targets: `nx run pipeline:all:quick`.
 * - Nx caching is off for these targets (DESIGN.md §6): Nx cannot see the git-ignored
 *   store and hashes inputs before upstream tasks finish; graft's artifact keys decide
 *   what is fresh, and a cache hit there costs about a second.
 */
const { readFileSync, readdirSync } = require('node:fs');
const { dirname, join, basename } = require('node:path');

const GRAFT = 'node packages/cli/bin/graft.js';

/** @param {string} file */
function readEntries(file) {
  try {
    const config = JSON.parse(readFileSync(file, 'utf8'));
    return config && typeof config.entries === 'object' && config.entries !== null ? config.entries : {};
  } catch {
    // An invalid config still gets an `all` target: running it prints graft's full error list.
    return {};
  }
}

/** @type {import('nx/src/devkit-exports').CreateNodes} */
const createNodes = [
  'pipelines/mnist-transfer.json',
  (configFiles, _options, context) =>
    configFiles.map((configFile) => {
      const projectRoot = dirname(configFile);
      const entries = readEntries(join(context.workspaceRoot, configFile));
      const stem = basename(configFile, '.json');
      const variants = readdirSync(join(context.workspaceRoot, projectRoot))
        .filter((name) => name.startsWith(`${stem}.`) && name.endsWith('.json'))
        .map((name) => ({ name: name.slice(stem.length + 1, -'.json'.length), file: `${projectRoot}/${name}` }))
        .filter((variant) => variant.name !== '' && variant.name !== 'schema');

      /** @param {string} target @param {string} file */
      const command = (target, file) => `${GRAFT} run ${target} --config ${file}`;
      /** @param {string} target */
      const targetFor = (target) => ({
        executor: 'nx:run-commands',
        cache: false,
        options: { command: command(target, configFile), cwd: '{workspaceRoot}', forwardAllArgs: true, tty: true },
        configurations: Object.fromEntries(variants.map((v) => [v.name, { command: command(target, v.file) }])),
      });

      // Arguments after `--` (--set, --seed, --artifacts, --backend) reach the upstream
      // targets too, so every process of one `nx run` resolves the same config.
      /** @param {string} target */
      const forwardTo = (target) => ({ target, params: 'forward' });
      /** @type {Record<string, any>} */
      const targets = {};
      for (const [name, entry] of Object.entries(entries)) {
        const upstream = [...new Set(Object.values((entry && entry.inputs) || {}))].filter((up) => typeof up === 'string' && up in entries);
        targets[name] = { ...targetFor(name), dependsOn: upstream.map(forwardTo), metadata: { description: `graft run ${name} (stage ${entry && entry.stage})` } };
      }
      // `all` is one graft process for the whole DAG (no dependsOn): graft orders the entries
      // itself, a fully cached run costs one start-up instead of one per entry, and the
      // only task Nx shows is the one whose output is the training's progress bar.
      targets.all = { ...targetFor('all'), metadata: { description: 'graft run all: every entry of the pipeline, in one process' } };
      return /** @type {const} */ ([configFile, { projects: { [projectRoot]: { name: 'pipeline', targets } } }]);
    }),
];

module.exports = { createNodes, name: 'nx-graft' };
