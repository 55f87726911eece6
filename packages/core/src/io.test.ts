import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { GraftError } from './errors.ts';
import { JsonFileError, atomicWriteFile, fsyncDir, parseJsonBytes, pidAlive, readJsonFile } from './io.ts';

const schema = z.strictObject({ name: z.string(), sizes: z.array(z.number().int()) });

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'graft-core-io-'));
});

async function problemsOf(bytes: string | Uint8Array): Promise<JsonFileError> {
  await writeFile(join(dir, 'f.json'), bytes);
  const error = await readJsonFile(join(dir, 'f.json'), schema).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(JsonFileError);
  return error as JsonFileError;
}

describe('readJsonFile', () => {
  it('returns the parsed, validated value', async () => {
    await writeFile(join(dir, 'f.json'), JSON.stringify({ name: 'x', sizes: [1, 2] }));
    await expect(readJsonFile(join(dir, 'f.json'), schema)).resolves.toEqual({ name: 'x', sizes: [1, 2] });
  });

  it('reports a missing file as missing, naming the path', async () => {
    const path = join(dir, 'nope', 'f.json');
    await expect(readJsonFile(path, schema)).rejects.toMatchObject({ code: 'JSON_FILE_INVALID', missing: true, problems: ['missing'], path, message: `${path}: missing` });
  });

  it('reports a directory in place of the file', async () => {
    await mkdir(join(dir, 'd.json'));
    await expect(readJsonFile(join(dir, 'd.json'), schema)).rejects.toMatchObject({ missing: false, problems: ['is a directory, not a file'] });
  });

  it.each([
    ['empty', '  \n', /^empty$/],
    ['not JSON', '{"name": ', /^not valid JSON/],
    ['not UTF-8', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /^not valid UTF-8$/],
    ['an array', '[]', /expected object, received array/],
  ])('rejects a file that is %s', async (_name, bytes, problem) => {
    expect((await problemsOf(bytes)).problems[0]).toMatch(problem);
  });

  it('lists every shape problem with its JSON path, unknown keys by name', async () => {
    const error = await problemsOf(JSON.stringify({ name: 3, sizes: [1, 1.5, 'x'], extra: 1, other: 2 }));
    expect(error.problems).toEqual([
      expect.stringMatching(/^name: /),
      expect.stringMatching(/^sizes\[1\]: /),
      expect.stringMatching(/^sizes\[2\]: /),
      'unknown keys "extra", "other"',
    ]);
  });

  it('is total: whatever the bytes, the only failure is JsonFileError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.string().map((s) => new TextEncoder().encode(s)), fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify(v)))), (bytes) => {
        try {
          parseJsonBytes('f.json', bytes, schema);
        } catch (error) {
          expect(error).toBeInstanceOf(JsonFileError);
        }
      }),
      { numRuns: 500 },
    );
    // Nesting deep enough to overflow JSON.parse's or zod's stack is still just bad bytes.
    expect(() => parseJsonBytes('f.json', new TextEncoder().encode('['.repeat(200_000) + ']'.repeat(200_000)), schema)).toThrow(JsonFileError);
  });

  it('reports real IO trouble as READ_FAILED, or through ioError', async () => {
    // A name longer than any file system allows: an OS error that says nothing about the bytes (works as root too).
    const path = join(dir, `${'x'.repeat(300)}.json`);
    await expect(readJsonFile(path, schema)).rejects.toMatchObject({ code: 'READ_FAILED', message: expect.stringContaining(path) });
    await expect(readJsonFile(path, schema, { ioError: () => new GraftError('MINE', 'custom') })).rejects.toMatchObject({ code: 'MINE' });
  });
});

describe('atomicWriteFile', () => {
  it('creates the parent directory, writes, replaces, and leaves no temp file', async () => {
    const path = join(dir, 'a', 'b', 'run.json');
    await atomicWriteFile(path, 'first');
    await atomicWriteFile(path, new TextEncoder().encode('second'));
    expect(await readFile(path, 'utf8')).toBe('second');
    await atomicWriteFile(path, [new Uint8Array([104, 105]), new Uint8Array([33])]);
    expect(await readFile(path, 'utf8')).toBe('hi!');
    expect(await readdir(join(dir, 'a', 'b'))).toEqual(['run.json']);
  });

  it('concurrent writers each leave a complete file, never a mix', async () => {
    const path = join(dir, 'shared.json');
    const bodies = Array.from({ length: 8 }, (_, i) => String(i).repeat(100_000));
    await Promise.all(bodies.map((body) => atomicWriteFile(path, body)));
    expect(bodies).toContain(await readFile(path, 'utf8'));
    expect(await readdir(dir)).toEqual(['shared.json']);
  });

  it('rethrows the system error and leaves the old content and no temp file behind', async () => {
    const path = join(dir, 'target');
    await mkdir(path);
    await writeFile(join(path, 'inside'), 'x');
    // rename(file, non-empty directory) fails: the write must not half-happen.
    const error = await atomicWriteFile(path, 'new').catch((e: unknown) => e);
    expect((error as NodeJS.ErrnoException).code).toMatch(/^E/);
    expect(await readdir(dir)).toEqual(['target']);
    expect(await readdir(path)).toEqual(['inside']);
  });
});

describe('fsyncDir and pidAlive', () => {
  it('fsyncs a directory', async () => {
    await expect(fsyncDir(dir)).resolves.toBeUndefined();
  });

  it('knows this process is alive and a finished child is not', () => {
    expect(pidAlive(process.pid)).toBe(true);
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    expect(pidAlive(Number(child.stdout.toString()))).toBe(false);
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(pidAlive(bad)).toBe(false);
  });
});
