import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryPointArgs, entryPointUrl, startWorker } from './entry-points.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'graft-entry-points-'));
  // As in the workspace's packages: ES modules.
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
  // The same worker twice: as a TypeScript source (type annotations, a .ts import) and as bundled JavaScript.
  await writeFile(join(dir, 'double.ts'), "import { parentPort, workerData } from 'node:worker_threads';\nconst n: number = workerData;\nparentPort!.postMessage(n * 2);\n");
  await writeFile(join(dir, 'double.js'), "import { parentPort, workerData } from 'node:worker_threads';\nparentPort.postMessage(workerData * 3);\n");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const caller = (ext: string) => pathToFileURL(join(dir, `caller${ext}`)).href;

function firstMessage(worker: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    worker.once('message', (message) => {
      resolve(message);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

describe('entry points', () => {
  it('resolve beside the caller: .ts from the sources, .js in the bundle', () => {
    expect(entryPointUrl(caller('.ts'), 'double').href).toBe(pathToFileURL(join(dir, 'double.ts')).href);
    expect(entryPointUrl(caller('.js'), 'double').href).toBe(pathToFileURL(join(dir, 'double.js')).href);
  });

  it('give child processes tsx only when running from the sources', () => {
    const fromSources = entryPointArgs(caller('.ts'), 'double');
    expect(fromSources).toHaveLength(3);
    expect(fromSources[0]).toBe('--import');
    expect(fromSources[1]).toMatch(/^file:.*\/node_modules\/tsx\//);
    expect(fromSources[2]).toBe(join(dir, 'double.ts'));
    expect(entryPointArgs(caller('.js'), 'double')).toEqual([join(dir, 'double.js')]);
  });

  it('start a worker thread on the TypeScript source, with tsx registered inside the thread', async () => {
    expect(await firstMessage(startWorker(caller('.ts'), 'double', { workerData: 21 }))).toBe(42);
  });

  it('start a worker thread on the bundled JavaScript directly', async () => {
    expect(await firstMessage(startWorker(caller('.js'), 'double', { workerData: 21 }))).toBe(63);
  });
});
