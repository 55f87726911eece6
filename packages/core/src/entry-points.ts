/**
 * Extra entry points: modules that run in a thread or process of their own (a worker
 * thread, a child-process script) rather than being imported.
 *
 * A package declares each one in its package.json, so the CLI bundle can emit it:
 *
 *     "graft": { "entryPoints": ["src/eval-worker.ts"] }
 *
 * The bundle (packages/cli/build.mjs) writes every declared entry point as `<basename>.js`
 * beside its chunks, so the module that starts it finds it as a sibling in both worlds:
 * `./eval-worker.ts` next to the caller in the sources (vitest, tsx), `./eval-worker.js`
 * next to whichever chunk the caller was bundled into. The caller passes its own
 * `import.meta.url` and the basename; the entry point must sit in the caller's directory.
 */
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** True when the caller runs from TypeScript sources (vitest, tsx) rather than the bundle. */
function fromSources(callerUrl: string): boolean {
  return callerUrl.endsWith('.ts');
}

/** The URL of the entry point `name` (basename without extension) beside the caller. */
export function entryPointUrl(callerUrl: string, name: string): URL {
  return new URL(`./${name}${fromSources(callerUrl) ? '.ts' : '.js'}`, callerUrl);
}

/**
 * Node arguments that run the entry point in a child process:
 * `spawn(process.execPath, [...entryPointArgs(import.meta.url, 'child'), ...scriptArgs])`.
 * From the sources, the child gets tsx's loader (`--import tsx`).
 */
export function entryPointArgs(callerUrl: string, name: string): string[] {
  const script = fileURLToPath(entryPointUrl(callerUrl, name));
  return fromSources(callerUrl) ? ['--import', import.meta.resolve('tsx'), script] : [script];
}

/**
 * Starts the entry point in a worker thread. From the sources, the thread first registers
 * tsx's loader: Node does not carry the parent's loader hooks into workers, and a
 * `--import` in a worker's execArgv does not install them either.
 */
export function startWorker(callerUrl: string, name: string, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  const url = entryPointUrl(callerUrl, name);
  if (!fromSources(callerUrl)) return new Worker(url, options);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}
