// @ts-check
/**
 * The layering of graft's packages, enforced (README "Packages"). Each package declares its
 * layer as an Nx tag in its package.json (`"nx": { "tags": ["layer:stage"] }`, shown by
 * `nx graph` and `nx show project <name>`); LAYERS below says which layers a layer may
 * import. A file may import a @graft package only when
 *   1. that package's layer is allowed for the importing package's layer, and
 *   2. the importing package declares it in package.json: `dependencies` for source files,
 *      `dependencies` or `devDependencies` for tests (*.test.ts, test-*.ts, __fixtures__/)
 *      and dev scripts (scripts/), which may also import the `dev` layer (@graft/testing).
 * Static imports, re-exports and dynamic `import()` are all checked.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import tsParser from '@typescript-eslint/parser';

/** Layer -> the layers its packages may import (a layer may import its own only where listed). */
const LAYERS = {
  /** core: the stage contract, artifact kinds, errors, RNG, IO toolkit. Imports no graft package. */
  base: [],
  /** wasm-kernels: tfjs kernels and the fused optimizer; tfjs only. */
  kernels: [],
  /** artifacts, data, model, train: libraries (formats, store, network, training). */
  library: ['base', 'kernels', 'library'],
  /** One stage each; they talk only through artifact kinds, never to each other. */
  stage: ['base', 'kernels', 'library'],
  /** pipeline: config, runner, run records. Knows stages only as definitions handed to it. */
  runner: ['base', 'library'],
  /** sweep: plans many runs into build units and schedules them; knows stages only through the registry handed to it. */
  orchestrator: ['base', 'library', 'runner'],
  /** queue: sweeps across machines (BullMQ on Redis); composes sweep plans and the runner, knows stages only as a registry handed to it. */
  queue: ['base', 'library', 'runner', 'orchestrator'],
  /** Test fixtures, imported by tests only (devDependencies). */
  dev: ['base', 'kernels', 'library', 'stage'],
  /** report, bench, cli: entry points that compose the rest. */
  app: ['base', 'kernels', 'library', 'stage', 'runner', 'orchestrator', 'queue', 'app'],
};

const root = new URL('.', import.meta.url).pathname;
const packagesDir = join(root, 'packages');

/** @type {Map<string, { dir: string, layer: string, deps: Set<string>, devDeps: Set<string> }>} */
const packages = new Map();
for (const dir of readdirSync(packagesDir)) {
  const file = join(packagesDir, dir, 'package.json');
  if (!existsSync(file)) continue;
  const pkg = JSON.parse(readFileSync(file, 'utf8'));
  const tags = pkg.nx?.tags ?? [];
  const layer = tags.find((/** @type {string} */ t) => t.startsWith('layer:'))?.slice('layer:'.length);
  if (!layer || !(layer in LAYERS)) {
    throw new Error(
      `packages/${dir}/package.json: declare the package's layer as an Nx tag, "nx": { "tags": ["layer:<one of ${Object.keys(LAYERS).join(', ')}>"] } (see eslint.config.js)`,
    );
  }
  const graftNames = (/** @type {Record<string, string> | undefined} */ deps) => new Set(Object.keys(deps ?? {}).filter((n) => n.startsWith('@graft/')));
  packages.set(pkg.name, { dir, layer, deps: graftNames(pkg.dependencies), devDeps: graftNames(pkg.devDependencies) });
}

const escape = (/** @type {string} */ s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * The rules for one package's files: every @graft package it may not import, each with the
 * reason, for static imports (no-restricted-imports) and dynamic ones (no-restricted-syntax).
 * @param {string} name @param {{ layer: string, deps: Set<string>, devDeps: Set<string> }} self @param {boolean} dev
 */
function rulesFor(name, self, dev) {
  const allowedLayers = [...(/** @type {Record<string, string[]>} */ (LAYERS)[self.layer] ?? []), ...(dev ? ['dev'] : [])];
  const declared = dev ? new Set([...self.deps, ...self.devDeps]) : self.deps;
  /** @type {Array<{ name: string, message: string }>} */
  const forbidden = [];
  for (const [other, info] of packages) {
    if (other === name) continue;
    if (!allowedLayers.includes(info.layer)) {
      forbidden.push({ name: other, message: `${name} (layer ${self.layer}) may not import ${other} (layer ${info.layer}): ${self.layer} imports only ${allowedLayers.join(', ') || 'no graft package'} (eslint.config.js LAYERS).` });
    } else if (!declared.has(other)) {
      forbidden.push({ name: other, message: `${other} is not in ${name}'s package.json ${dev ? 'dependencies or devDependencies' : 'dependencies'}; declare it there first.` });
    }
  }
  return {
    'no-restricted-imports': ['error', { paths: forbidden.map(({ name: n, message }) => ({ name: n, message })), patterns: forbidden.map(({ name: n, message }) => ({ group: [`${n}/*`], message })) }],
    'no-restricted-syntax': [
      'error',
      ...forbidden.map(({ name: n, message }) => ({ selector: `ImportExpression[source.value=/^${escape(n)}(\\u002F.*)?$/]`, message })),
    ],
  };
}

const DEV_FILES = ['**/*.test.ts', '**/test-*.ts', '**/__fixtures__/**', 'scripts/**'];

export default [
  { ignores: ['**/node_modules/**', '**/dist/**', 'artifacts/**', '.nx/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tsParser, ecmaVersion: 'latest', sourceType: 'module' },
    // Only the layering rules run here: disable comments for other rules are not ours to judge.
    linterOptions: { reportUnusedDisableDirectives: 'off' },
  },
  ...[...packages].flatMap(([name, self]) => [
    { files: [`packages/${self.dir}/**/*.ts`], rules: rulesFor(name, self, false) },
    { files: DEV_FILES.map((glob) => `packages/${self.dir}/${glob}`), rules: rulesFor(name, self, true) },
  ]),
];
