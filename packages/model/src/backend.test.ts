import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from './backend.ts';

describe('initBackend', () => {
  it('reports a clear error when tfjs-node is requested but not installed', async () => {
    await expect(initBackend('tensorflow')).rejects.toMatchObject({
      code: 'BACKEND_UNAVAILABLE',
      message: expect.stringContaining('@tensorflow/tfjs-node is not installed'),
    });
  });

  it("'auto' falls back to wasm, says why, and is idempotent", async () => {
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

  it('switches to an explicitly requested backend and rejects unknown names', async () => {
    expect((await initBackend('cpu')).backend).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect((await initBackend('wasm')).backend).toBe('wasm');
    await expect(initBackend('gpu')).rejects.toMatchObject({ code: 'BACKEND_UNKNOWN', exitCode: 2 });
  });
});
