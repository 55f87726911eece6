// @ts-check
/**
 * Builds the `graft` CLI: one esbuild bundle of the @graft/* sources (packages from
 * node_modules stay external, so tfjs-backend-wasm finds its .wasm files, and dynamic
 * imports stay lazy as separate chunks).
 *
 *   dist/build.json       which build is current and the inputs it was made from
 *   dist/<hash>/main.js   the CLI; chunk-*.js; one <name>.js per declared entry point
 *
 * Entry points beyond the CLI (worker threads, child-process scripts) are declared by
 * their package: `"graft": { "entryPoints": ["src/eval-worker.ts"] }` in its package.json
 * (see packages/core/src/entry-points.ts for how code starts them); files code reads
 * beside itself (`new URL('./x.py', import.meta.url)`) as `"assets": ["src/x.py"]`.
 *
 * Run by `npm ci` (the root's `prepare`), by the Nx `build` target, by the e2e test tier's
 * global setup, and by bin/graft.js itself whenever an input changed since the last build,
 * so nothing ever runs a stale build. Concurrent builds are safe: each writes a temp dir,
 * renames it to its content hash, then swaps dist/build.json atomically.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CLI_ROOT = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(CLI_ROOT, '../..');
export const DIST = join(CLI_ROOT, 'dist');
export const BUILD_INFO = join(DIST, 'build.json');
const FORMAT = 1;
/** Old builds are kept this long: a long run started from one may still load a chunk or worker from it. */
const KEEP_OLD_BUILDS_MS = 24 * 3600_000;
const KEEP_NEWEST_BUILDS = 3;

/** Workspace package directories (root package.json `workspaces`, `dir/*` patterns). */
function workspacePackages() {
  const { workspaces = [] } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
  /** @type {string[]} */
  const dirs = [];
  for (const pattern of workspaces) {
    if (pattern.endsWith('/*')) {
      const parent = join(REPO_ROOT, pattern.slice(0, -2));
      for (const name of existsSync(parent) ? readdirSync(parent).sort() : []) {
        if (existsSync(join(parent, name, 'package.json'))) dirs.push(join(parent, name));
      }
    } else if (existsSync(join(REPO_ROOT, pattern, 'package.json'))) {
      dirs.push(join(REPO_ROOT, pattern));
    }
  }
  return dirs;
}

/** The CLI plus every entry point a workspace package declares, as esbuild `{in, out}` pairs. */
function entryPoints() {
  /** @type {Map<string, string>} */
  const byName = new Map([['main', join(CLI_ROOT, 'src/main.ts')]]);
  for (const dir of workspacePackages()) {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    for (const entry of manifest.graft?.entryPoints ?? []) {
      const source = join(dir, entry);
      const name = basename(entry, extname(entry));
      if (!existsSync(source)) throw new Error(`${relative(REPO_ROOT, dir)}/package.json declares the entry point ${entry}, which does not exist.`);
      const other = byName.get(name);
      if (other && other !== source) {
        throw new Error(`Two entry points would both be bundled as ${name}.js: ${relative(REPO_ROOT, other)} and ${relative(REPO_ROOT, source)}. Rename one; the bundle is one flat directory.`);
      }
      byName.set(name, source);
    }
  }
  return [...byName].map(([out, source]) => ({ in: source, out }));
}

/** Files a package ships beside its code (`"graft": { "assets": ["src/x.py"] }`), copied beside the chunks. */
function assets() {
  /** @type {string[]} */
  const files = [];
  for (const dir of workspacePackages()) {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    for (const asset of manifest.graft?.assets ?? []) {
      if (!existsSync(join(dir, asset))) throw new Error(`${relative(REPO_ROOT, dir)}/package.json declares the asset ${asset}, which does not exist.`);
      files.push(join(dir, asset));
    }
  }
  return files;
}

/** @param {string} file */
function fingerprint(file) {
  const bytes = readFileSync(file);
  const { size, mtimeMs } = statSync(file);
  return { size, mtimeMs, sha1: createHash('sha1').update(bytes).digest('hex') };
}

/**
 * Null when dist/build.json names a build made from exactly the current inputs, else why not.
 * Cheap on the fast path (one stat per input); a changed mtime falls back to the content hash,
 * so a checkout or an Nx cache restore that only touches mtimes does not force a rebuild.
 * @returns {{ stale: string | null, dir: string | null }}
 */
export function checkBuild() {
  /** @type {{ format: number, dir: string, inputs: Record<string, { size: number, mtimeMs: number, sha1: string }> }} */
  let info;
  try {
    info = JSON.parse(readFileSync(BUILD_INFO, 'utf8'));
  } catch {
    return { stale: 'not built yet', dir: null };
  }
  if (info.format !== FORMAT || !existsSync(join(DIST, info.dir, 'main.js'))) return { stale: 'the build is incomplete', dir: null };
  for (const [file, want] of Object.entries(info.inputs)) {
    let stat;
    try {
      stat = statSync(join(REPO_ROOT, file));
    } catch {
      return { stale: `${file} is gone`, dir: null };
    }
    if (stat.size !== want.size) return { stale: `${file} changed`, dir: null };
    if (stat.mtimeMs !== want.mtimeMs && fingerprint(join(REPO_ROOT, file)).sha1 !== want.sha1) return { stale: `${file} changed`, dir: null };
  }
  return { stale: null, dir: join(DIST, info.dir) };
}

/** Builds the CLI and makes it current; returns the build directory. */
export async function build() {
  const esbuild = await import('esbuild').catch((error) => {
    throw new Error(`graft needs a build and esbuild is not installed (${error.message}). Run \`npm ci\` in ${REPO_ROOT}.`);
  });
  mkdirSync(DIST, { recursive: true });
  const tmp = join(DIST, `.tmp-${process.pid}-${Math.random().toString(16).slice(2, 10)}`);
  try {
    const result = await esbuild.build({
      absWorkingDir: REPO_ROOT,
      entryPoints: entryPoints(),
      outdir: tmp,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: 'linked',
      // Bundled @graft/* code still sees its own module URL (import.meta.url), which now
      // points into dist/<hash>/; code that looks for files next to itself uses entry points.
      metafile: true,
      logLevel: 'silent',
      plugins: [
        {
          name: 'external-node-modules',
          setup(b) {
            // Everything but the workspace's own packages comes from node_modules at run time.
            b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@graft/') ? undefined : { path: args.path, external: true }));
          },
        },
      ],
    });
    // Inputs: every bundled source, every workspace manifest (exports, entry points), this script.
    const inputs = new Set(Object.keys(result.metafile.inputs).filter((file) => !file.includes('node_modules/')));
    for (const dir of workspacePackages()) inputs.add(relative(REPO_ROOT, join(dir, 'package.json')));
    for (const file of ['package.json', 'tsconfig.base.json', relative(REPO_ROOT, fileURLToPath(import.meta.url))]) if (existsSync(join(REPO_ROOT, file))) inputs.add(file);

    for (const file of assets()) {
      copyFileSync(file, join(tmp, basename(file)));
      inputs.add(relative(REPO_ROOT, file));
    }
    const outputs = [...Object.keys(result.metafile.outputs), ...assets().map((file) => relative(REPO_ROOT, join(tmp, basename(file))))].sort();
    const hash = createHash('sha1');
    for (const file of outputs) hash.update(file.slice(relative(REPO_ROOT, tmp).length)).update(readFileSync(join(REPO_ROOT, file)));
    const dir = hash.digest('hex').slice(0, 16);
    try {
      renameSync(tmp, join(DIST, dir));
    } catch (error) {
      // Another process built the same bytes first: use theirs.
      if (!['ENOTEMPTY', 'EEXIST'].includes(/** @type {NodeJS.ErrnoException} */ (error).code ?? '')) throw error;
    }
    const info = { format: FORMAT, dir, builtAt: new Date().toISOString(), inputs: Object.fromEntries([...inputs].sort().map((file) => [file, fingerprint(join(REPO_ROOT, file))])) };
    const infoTmp = `${BUILD_INFO}.${process.pid}.tmp`;
    writeFileSync(infoTmp, JSON.stringify(info, null, 1) + '\n');
    renameSync(infoTmp, BUILD_INFO);
    removeOldBuilds(dir);
    return join(DIST, dir);
  } catch (error) {
    const errors = /** @type {{ errors?: Array<{ text: string, location?: { file: string, line: number } }> }} */ (error).errors;
    if (errors?.length) {
      throw new Error(`building the graft CLI failed:\n${errors.map((e) => `  ${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`).join('\n')}`);
    }
    throw error;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** @param {string} current */
function removeOldBuilds(current) {
  const now = Date.now();
  const builds = readdirSync(DIST, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== current)
    .map((d) => ({ path: join(DIST, d.name), mtimeMs: statSync(join(DIST, d.name)).mtimeMs, temp: d.name.startsWith('.tmp-') }))
    .sort((a, b) => b.mtimeMs - a.mtimeMs);
  builds
    .filter((b) => !b.temp)
    .slice(KEEP_NEWEST_BUILDS - 1)
    .concat(builds.filter((b) => b.temp))
    .filter((b) => now - b.mtimeMs > KEEP_OLD_BUILDS_MS)
    .forEach((b) => rmSync(b.path, { recursive: true, force: true }));
}

// `node build.mjs` builds; `--if-stale` only when an input changed since the current build.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { stale } = process.argv.includes('--if-stale') ? checkBuild() : { stale: 'asked to' };
  if (stale !== null) {
    const started = performance.now();
    try {
      const dir = await build();
      process.stderr.write(`graft CLI built: ${relative(process.cwd(), dir) || dir} (${Math.round(performance.now() - started)} ms)\n`);
    } catch (error) {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    }
  }
}
