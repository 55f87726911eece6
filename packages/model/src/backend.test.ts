import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { chooseBackend, initBackend, type BackendLoaders } from './backend.ts';

// Whether the optional @tensorflow/tfjs-node is installed depends on the machine (its install
// downloads libtensorflow): tests of the real loaders branch or skip on it, saying why; the
// choice logic is tested with injected loaders, independent of what is installed.
const tfjsNodeInstalled = (() => {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
})();
const NOT_INSTALLED = '@tensorflow/tfjs-node is not installed on this machine';
const INSTALLED = '@tensorflow/tfjs-node is installed on this machine';

/** Loaders that record each attempt and fail for the names in `missing`. */
function fakeLoaders(missing: string[]): { loaders: BackendLoaders; tried: string[] } {
  const tried: string[] = [];
  const loader = (name: string) => async () => {
    tried.push(name);
    if (missing.includes(name)) throw new Error(`${name} is missing here`);
  };
  return { loaders: { tensorflow: loader('tensorflow'), wasm: loader('wasm'), cpu: loader('cpu') }, tried };
}

describe('chooseBackend (injected loaders)', () => {
  it("'auto' takes tensorflow first when it loads", async () => {
    const { loaders, tried } = fakeLoaders([]);
    expect(await chooseBackend('auto', loaders)).toEqual({ backend: 'tensorflow', reason: 'auto: tensorflow is the fastest backend available' });
    expect(tried).toEqual(['tensorflow']);
  });

  it("'auto' falls back to wasm, then cpu, naming every failure", async () => {
    const wasm = fakeLoaders(['tensorflow']);
    expect(await chooseBackend('auto', wasm.loaders)).toEqual({ backend: 'wasm', reason: 'auto: chose wasm because tensorflow: tensorflow is missing here' });
    const cpu = fakeLoaders(['tensorflow', 'wasm']);
    expect(await chooseBackend('auto', cpu.loaders)).toEqual({
      backend: 'cpu',
      reason: 'auto: chose cpu because tensorflow: tensorflow is missing here; wasm: wasm is missing here',
    });
    expect(cpu.tried).toEqual(['tensorflow', 'wasm', 'cpu']);
  });

  it("'auto' fails with every reason when nothing loads", async () => {
    await expect(chooseBackend('auto', fakeLoaders(['tensorflow', 'wasm', 'cpu']).loaders)).rejects.toMatchObject({
      code: 'BACKEND_UNAVAILABLE',
      exitCode: 1,
      message: expect.stringMatching(/tensorflow: .*; wasm: .*; cpu: cpu is missing here/),
    });
  });

  it('an explicit request loads only that backend and never falls back', async () => {
    const { loaders, tried } = fakeLoaders(['tensorflow']);
    expect(await chooseBackend('cpu', loaders)).toEqual({ backend: 'cpu', reason: 'requested cpu' });
    await expect(chooseBackend('tensorflow', loaders)).rejects.toMatchObject({
      code: 'BACKEND_UNAVAILABLE',
      exitCode: 2,
      message: expect.stringContaining("backend 'tensorflow' is not available: tensorflow is missing here. Choose another with --backend"),
    });
    expect(tried).toEqual(['cpu', 'tensorflow']);
  });
});

describe('initBackend (the real loaders)', () => {
  it('reports a clear error when tfjs-node is requested but not installed', async (ctx) => {
    ctx.skip(tfjsNodeInstalled, INSTALLED);
    await expect(initBackend('tensorflow')).rejects.toMatchObject({
      code: 'BACKEND_UNAVAILABLE',
      message: expect.stringContaining('@tensorflow/tfjs-node is not installed'),
    });
  });

  it("'auto' falls back to wasm without tfjs-node, says why, and is idempotent", async (ctx) => {
    ctx.skip(tfjsNodeInstalled, INSTALLED);
    const logged: object[] = [];
    const logger = { info: (o: object) => logged.push(o), warn() {} };
    const handlers = () => process.listeners('uncaughtException').length + process.listeners('unhandledRejection').length;
    const before = handlers();
    const info = await initBackend('auto', logger);
    // The wasm glue's rethrowing process handlers are removed again.
    expect(handlers()).toBe(before);
    expect(info.backend).toBe('wasm');
    expect(info.reason).toMatch(/tensorflow: @tensorflow\/tfjs-node is not installed/);
    expect(info.tfjsVersion).toBe(tf.version_core);
    expect(tf.getBackend()).toBe('wasm');
    expect(await initBackend('auto', logger)).toBe(info);
    expect(logged).toHaveLength(1);
  });

  it("'auto' and 'tensorflow' use tfjs-node when it is installed", async (ctx) => {
    ctx.skip(!tfjsNodeInstalled, NOT_INSTALLED);
    const info = await initBackend('auto');
    expect(info).toMatchObject({ backend: 'tensorflow', reason: 'auto: tensorflow is the fastest backend available' });
    expect(tf.getBackend()).toBe('tensorflow');
    expect((await initBackend('tensorflow')).backend).toBe('tensorflow');
  });

  it('switches to an explicitly requested backend and rejects unknown names', async () => {
    expect((await initBackend('cpu')).backend).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect((await initBackend('wasm')).backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    await expect(initBackend('gpu')).rejects.toMatchObject({ code: 'BACKEND_UNKNOWN', exitCode: 2 });
  });
});
