import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import type { Checkpoint } from './checkpoint.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'graft-ckpt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sample: Checkpoint<{ epoch: number; curve: number[] }> = {
  fingerprint: 'abc',
  state: { epoch: 3, curve: [0.5, 0.75] },
  tensors: [
    { name: 'w', dtype: 'float32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, NaN, 0, 1e-30]) },
    { name: 'iter', dtype: 'int32', shape: [], data: new Int32Array([7]) },
    { name: 'empty', dtype: 'float32', shape: [0], data: new Float32Array(0) },
    { name: 'odd', dtype: 'float32', shape: [1], data: new Float32Array([2]) },
  ],
};

describe('checkpoint files', () => {
  it('round-trips state and tensors exactly, leaving no temp files', async () => {
    const path = join(dir, 'sub', 'train.ckpt');
    await writeCheckpoint(path, sample);
    await writeCheckpoint(path, { ...sample, state: { epoch: 4, curve: [] } });
    const back = await readCheckpoint<typeof sample.state>(path);
    expect(back).toEqual({ ...sample, state: { epoch: 4, curve: [] } });
    expect(await readdir(join(dir, 'sub'))).toEqual(['train.ckpt']);
  });

  it('returns null when there is no checkpoint', async () => {
    expect(await readCheckpoint(join(dir, 'none.ckpt'))).toBeNull();
  });

  it('rejects truncated, corrupted and foreign files with CHECKPOINT_INVALID', async () => {
    const path = join(dir, 'train.ckpt');
    await writeCheckpoint(path, sample);
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.byteLength - 4));
    await expect(readCheckpoint(path)).rejects.toMatchObject({ code: 'CHECKPOINT_INVALID', message: expect.stringContaining('truncated') });
    const flipped = Buffer.from(bytes);
    flipped[flipped.byteLength - 10]! ^= 0xff;
    await writeFile(path, flipped);
    await expect(readCheckpoint(path)).rejects.toMatchObject({ code: 'CHECKPOINT_INVALID', message: expect.stringContaining('checksum') });
    await writeFile(path, 'hello world, not a checkpoint');
    await expect(readCheckpoint(path)).rejects.toMatchObject({ code: 'CHECKPOINT_INVALID', message: expect.stringContaining('not a graft checkpoint') });
  });

  it('reports an unwritable location as CHECKPOINT_WRITE_FAILED', async () => {
    await writeFile(join(dir, 'file'), 'x');
    await expect(writeCheckpoint(join(dir, 'file', 'train.ckpt'), sample)).rejects.toMatchObject({ code: 'CHECKPOINT_WRITE_FAILED' });
  });
});
