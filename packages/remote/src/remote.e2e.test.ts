import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ArtifactStore, CorruptArtifactError, MANIFEST_FILE, computeKey } from '@graft/artifacts';
import { canonicalJson, type InputArtifact } from '@graft/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { blobObject, manifestObject } from './layout.ts';
import { openRemote, type ArtifactRemote, type RemoteOptions } from './remote.ts';
import { S3RVER_CREDENTIALS, startS3Server, type TestS3Server } from './test-s3-server.ts';

let server: TestS3Server;
let admin: S3Client;
beforeAll(async () => {
  server = await startS3Server();
  // A plain client for the tests' own tampering with the bucket (corrupting, deleting objects).
  admin = new S3Client({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: S3RVER_CREDENTIALS });
});
afterAll(async () => {
  admin?.destroy();
  await server?.stop();
});

let prefixCounter = 0;
let remoteUrl: string;
let work: string;
beforeEach(async () => {
  // A fresh prefix per test: one server, no test sees another's objects.
  remoteUrl = `s3://${server.bucket}/t${++prefixCounter}`;
  work = await mkdtemp(join(tmpdir(), 'graft-remote-'));
  const dir = work;
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
});

async function remote(options: Partial<RemoteOptions> = {}): Promise<ArtifactRemote> {
  const opened = await openRemote({ url: remoteUrl, endpoint: server.endpoint, credentials: S3RVER_CREDENTIALS, ...options });
  onTestFinished(() => opened.close());
  return opened;
}

function store(name: string): ArtifactStore {
  return new ArtifactStore(join(work, name), { lockTimeoutMs: 5_000 });
}

/** Publishes `stage` with the given files in a store (the same key for the same params, whatever the bytes). */
async function build(target: ArtifactStore, stage: string, params: unknown, files: Record<string, string | Uint8Array>): Promise<InputArtifact> {
  const key = computeKey({ stage, stageVersion: '1', params, inputs: {} });
  const pending = await target.begin(stage, key);
  for (const [path, content] of Object.entries(files)) {
    const file = join(pending.outDir, ...path.split('/'));
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, content);
  }
  return target.publish(pending, { stageVersion: '1', params, inputs: {}, durationMs: 5, producer: { graft: 'test', node: process.version }, metrics: { n: Object.keys(files).length } });
}

const sampleFiles = { 'train.arrow': new Uint8Array(70_000).map((_, i) => (i * 31) % 251), 'model/weights.bin': 'weights', 'empty.txt': '' };

async function objectBytes(name: string): Promise<Uint8Array> {
  const response = await admin.send(new GetObjectCommand({ Bucket: server.bucket, Key: name }));
  return response.Body!.transformToByteArray();
}

async function putObject(name: string, body: Uint8Array | string): Promise<void> {
  await admin.send(new PutObjectCommand({ Bucket: server.bucket, Key: name, Body: body }));
}

async function tmpEntries(target: ArtifactStore): Promise<string[]> {
  return readdir(join(target.root, '.tmp')).catch(() => []);
}

describe('push and pull', () => {
  it('pushes an artifact and pulls it into an empty store, verified and byte-identical', async () => {
    const source = store('a');
    const original = await build(source, 'split', { n: 1 }, sampleFiles);
    const r = await remote();
    expect(await r.has('split', original.key)).toBe(false);
    expect(await r.pushArtifact(source, 'split', original.key)).toMatchObject({ outcome: 'uploaded' });
    expect(await r.has('split', original.key)).toBe(true);
    expect(await r.list()).toEqual([{ stage: 'split', key: original.key }]);
    // Pushing again moves nothing.
    expect(await r.pushArtifact(source, 'split', original.key)).toEqual({ outcome: 'present', bytes: 0 });

    const target = store('b');
    const pulled = await r.pullArtifact(target, 'split', original.key);
    expect(pulled?.outcome).toBe('downloaded');
    expect(pulled?.artifact.manifest).toEqual(original.manifest);
    expect(await readFile(join(pulled!.artifact.path, MANIFEST_FILE))).toEqual(await readFile(join(original.path, MANIFEST_FILE)));
    expect(await readFile(join(pulled!.artifact.path, 'train.arrow'))).toEqual(Buffer.from(sampleFiles['train.arrow']));
    expect((await target.verify()).map((v) => v.ok)).toEqual([true]);
    expect(await tmpEntries(target)).toEqual([]);
    expect((await r.pullArtifact(target, 'split', original.key))?.outcome).toBe('present');
    // A key the remote lacks is simply absent.
    expect(await r.pullArtifact(target, 'split', 'f'.repeat(64))).toBeUndefined();
  });

  it('stores files by content: the manifest object is the local manifest.json, files are sha256-named', async () => {
    const source = store('a');
    const original = await build(source, 'ingest', { n: 2 }, sampleFiles);
    const r = await remote();
    await r.pushArtifact(source, 'ingest', original.key);
    expect(Buffer.from(await objectBytes(manifestObject(r.location, 'ingest', original.key)))).toEqual(await readFile(join(original.path, MANIFEST_FILE)));
    for (const file of original.manifest.files) {
      const bytes = await objectBytes(blobObject(r.location, file.sha256));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(file.sha256);
    }
  });

  it('pushes and pulls whole stores or the artifacts selectors match', async () => {
    const source = store('a');
    const one = await build(source, 'ingest', { n: 3 }, { 'a.bin': 'a' });
    const two = await build(source, 'split', { n: 4 }, { 'b.bin': 'b' });
    const r = await remote();
    const pushed = await r.push(source, { selectors: [`split/${two.key.slice(0, 8).toUpperCase()}`] });
    expect(pushed.map((p) => [p.stage, p.outcome])).toEqual([['split', 'uploaded']]);
    expect((await r.push(source)).map((p) => [p.stage, p.outcome])).toEqual([['ingest', 'uploaded'], ['split', 'present']]);

    const target = store('b');
    expect((await r.pull(target, { selectors: [one.key.slice(0, 10)] })).map((p) => [p.stage, p.outcome])).toEqual([['ingest', 'downloaded']]);
    expect((await r.pull(target)).map((p) => [p.stage, p.outcome])).toEqual([['ingest', 'present'], ['split', 'downloaded']]);
    expect((await target.verify()).every((v) => v.ok)).toBe(true);
  });

  it('never pushes a corrupt local artifact', async () => {
    const source = store('a');
    const original = await build(source, 'split', { n: 5 }, sampleFiles);
    await writeFile(join(original.path, 'model', 'weights.bin'), 'weightZ');
    const r = await remote();
    await expect(r.pushArtifact(source, 'split', original.key)).rejects.toBeInstanceOf(CorruptArtifactError);
    expect(await r.has('split', original.key)).toBe(false);
    const reports = await r.push(source);
    expect(reports).toMatchObject([{ stage: 'split', outcome: 'failed', error: { code: 'ARTIFACT_CORRUPT' } }]);
  });
});

describe('pull verifies before anything is visible', () => {
  async function pushed(): Promise<{ r: ArtifactRemote; original: InputArtifact }> {
    const source = store('a');
    const original = await build(source, 'split', { n: 10 }, sampleFiles);
    const r = await remote();
    await r.pushArtifact(source, 'split', original.key);
    return { r, original };
  }

  it('detects a remote file whose bytes changed (same size) and publishes nothing', async () => {
    const { r, original } = await pushed();
    const file = original.manifest.files.find((f) => f.path === 'train.arrow')!;
    const bytes = await objectBytes(blobObject(r.location, file.sha256));
    bytes[1234] = bytes[1234]! ^ 0xff;
    await putObject(blobObject(r.location, file.sha256), bytes);

    const target = store('b');
    const error = await r.pullArtifact(target, 'split', original.key).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptArtifactError);
    expect((error as CorruptArtifactError).problems).toEqual([expect.stringMatching(/^train\.arrow: sha256 mismatch/)]);
    expect((error as Error).message).toContain(remoteUrl);
    expect(await target.has('split', original.key)).toBe(false);
    expect(await tmpEntries(target)).toEqual([]);
    // Bulk pull reports it and carries on; the store stays empty.
    expect(await r.pull(target)).toMatchObject([{ outcome: 'failed', error: { code: 'ARTIFACT_CORRUPT' } }]);
    expect(await target.list()).toEqual([]);

    // A plain push trusts what is there (same name, same size); an overwriting push repairs it.
    const source = new ArtifactStore(dirname(original.path).replace(/\/split$/, ''));
    expect(await r.pushArtifact(source, 'split', original.key)).toEqual({ outcome: 'present', bytes: 0 });
    expect((await r.pushArtifact(source, 'split', original.key, { overwrite: true })).outcome).toBe('uploaded');
    expect((await r.pullArtifact(target, 'split', original.key))?.outcome).toBe('downloaded');
  });

  it('detects a truncated or missing remote file', async () => {
    const { r, original } = await pushed();
    const file = original.manifest.files.find((f) => f.path === 'model/weights.bin')!;
    await putObject(blobObject(r.location, file.sha256), 'weigh');
    const target = store('b');
    await expect(r.pullArtifact(target, 'split', original.key)).rejects.toMatchObject({ problems: ['model/weights.bin: size mismatch, 5 bytes, expected 7'] });
    await admin.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: blobObject(r.location, file.sha256) }));
    await expect(r.pullArtifact(target, 'split', original.key)).rejects.toMatchObject({ problems: [expect.stringMatching(/^model\/weights\.bin: missing on the remote/)] });
    expect(await target.list()).toEqual([]);
    expect(await tmpEntries(target)).toEqual([]);
  });

  it('refuses an edited remote manifest, and one whose paths leave the artifact, before downloading anything', async () => {
    const { r, original } = await pushed();
    const name = manifestObject(r.location, 'split', original.key);
    const manifest = JSON.parse(Buffer.from(await objectBytes(name)).toString('utf8'));
    await putObject(name, JSON.stringify({ ...manifest, metrics: { n: 99 } }));
    const target = store('b');
    await expect(r.pullArtifact(target, 'split', original.key)).rejects.toMatchObject({ problems: [expect.stringContaining('digest mismatch')] });

    // A hostile manifest with a recomputed digest: the schema still refuses '..' and absolute paths.
    for (const path of ['../escape.bin', '/etc/evil', 'a/../../b']) {
      const { digest: _old, ...rest } = { ...manifest, files: [{ ...manifest.files[0], path }] };
      const forged = { ...rest, digest: createHash('sha256').update(canonicalJson(rest), 'utf8').digest('hex') };
      await putObject(name, JSON.stringify(forged));
      await expect(r.pullArtifact(target, 'split', original.key)).rejects.toMatchObject({ code: 'ARTIFACT_CORRUPT', problems: [expect.stringContaining('must be a relative POSIX path')] });
    }
    // Refused before the first download: the target store was not even created.
    expect(await readdir(work)).toEqual(['a']);
  });

  it('ignores object names graft does not write (stray files, .. segments, other names)', async () => {
    const { r, original } = await pushed();
    await putObject(`t${prefixCounter}/artifacts/split/${original.key}/other.json`, '{}');
    await putObject(`t${prefixCounter}/artifacts/../x/manifest.json`, '{}');
    await putObject(`t${prefixCounter}/artifacts/runs/${original.key}/manifest.json`, '{}');
    await putObject(`t${prefixCounter}/artifacts/split/not a key/manifest.json`, '{}');
    await putObject(`t${prefixCounter}/artifacts/split/${original.key}/nested/manifest.json`, '{}');
    expect(await r.list()).toEqual([{ stage: 'split', key: original.key }]);
  });
});

describe('concurrency and interrupted uploads', () => {
  it('two pushes of the same key with different bytes leave one whole artifact, never a mix', async () => {
    // Same key, different bytes: what two workers with a non-deterministic stage would produce.
    const a = store('a');
    const b = store('b');
    const fromA = await build(a, 'phase-one', { n: 20 }, { 'model/weights.bin': 'A'.repeat(5000), 'metrics.json': '{"from":"a"}' });
    const fromB = await build(b, 'phase-one', { n: 20 }, { 'model/weights.bin': 'B'.repeat(5000), 'metrics.json': '{"from":"b"}' });
    expect(fromA.key).toBe(fromB.key);

    // Both have uploaded every file before either writes its manifest: the worst interleaving.
    let arrived = 0;
    let release!: () => void;
    const bothUploaded = new Promise<void>((resolve) => (release = resolve));
    const barrier = async (): Promise<void> => {
      if (++arrived === 2) release();
      await bothUploaded;
    };
    const [ra, rb] = [await remote({ beforeCommit: barrier }), await remote({ beforeCommit: barrier })];
    const outcomes = await Promise.all([ra.pushArtifact(a, 'phase-one', fromA.key), rb.pushArtifact(b, 'phase-one', fromB.key)]);
    expect(outcomes.map((o) => o.outcome)).toEqual(['uploaded', 'uploaded']);

    const target = store('c');
    const pulled = await ra.pullArtifact(target, 'phase-one', fromA.key);
    const weights = await readFile(join(pulled!.artifact.path, 'model', 'weights.bin'), 'utf8');
    const metrics = await readFile(join(pulled!.artifact.path, 'metrics.json'), 'utf8');
    expect([weights[0], JSON.parse(metrics).from]).toSatisfy(([w, m]: [string, string]) => (w === 'A' && m === 'a') || (w === 'B' && m === 'b'));
    expect(pulled!.artifact.manifest).toEqual(weights[0] === 'A' ? fromA.manifest : fromB.manifest);
    expect((await target.verify()).every((v) => v.ok)).toBe(true);
  });

  it('many concurrent pushes and pulls of the same keys all succeed and verify', async () => {
    const source = store('a');
    const artifacts = [await build(source, 'ingest', { n: 30 }, sampleFiles), await build(source, 'split', { n: 31 }, { 'x.bin': 'x' })];
    const remotes = await Promise.all([remote(), remote(), remote()]);
    await Promise.all(remotes.flatMap((r) => artifacts.map((artifact) => r.pushArtifact(source, artifact.manifest.stage, artifact.key))));
    const target = store('b');
    const pulls = await Promise.all(remotes.flatMap((r) => artifacts.map((artifact) => r.pullArtifact(target, artifact.manifest.stage, artifact.key))));
    expect(pulls.every((p) => p !== undefined)).toBe(true);
    expect(pulls.filter((p) => p!.outcome === 'downloaded')).toHaveLength(2);
    expect((await target.verify()).map((v) => v.ok)).toEqual([true, true]);
    expect(await tmpEntries(target)).toEqual([]);
  });

  it('an upload interrupted before its manifest is not an artifact on the remote', async () => {
    const source = store('a');
    const original = await build(source, 'split', { n: 40 }, sampleFiles);
    const crashing = await remote({
      beforeCommit: () => {
        throw new Error('killed before the manifest');
      },
    });
    await expect(crashing.pushArtifact(source, 'split', original.key)).rejects.toThrow('killed before the manifest');
    // Its files are there, its manifest is not.
    const weights = original.manifest.files.find((f) => f.path === 'model/weights.bin')!;
    expect(Buffer.from(await objectBytes(blobObject(crashing.location, weights.sha256))).toString()).toBe('weights');

    const r = await remote();
    expect(await r.has('split', original.key)).toBe(false);
    expect(await r.list()).toEqual([]);
    const target = store('b');
    expect(await r.pullArtifact(target, 'split', original.key)).toBeUndefined();
    expect(await r.pull(target)).toEqual([]);
    expect(await target.list()).toEqual([]);
    // A later push completes it, reusing the files already uploaded.
    const retry = await r.pushArtifact(source, 'split', original.key);
    expect(retry.outcome).toBe('uploaded');
    expect(retry.bytes).toBe((await readFile(join(original.path, MANIFEST_FILE))).length);
    expect((await r.pullArtifact(target, 'split', original.key))?.outcome).toBe('downloaded');
  });
});

describe('remote-wide failures', () => {
  it('a missing bucket is a usage error naming it', async () => {
    const r = await remote({ url: 's3://no-such-bucket/x' });
    await expect(r.list()).rejects.toMatchObject({ code: 'REMOTE_NO_BUCKET', exitCode: 2, message: expect.stringContaining('"no-such-bucket" does not exist') });
    const source = store('a');
    await build(source, 'split', { n: 50 }, { 'a.bin': 'a' });
    await expect(r.push(source)).rejects.toMatchObject({ code: 'REMOTE_NO_BUCKET' });
  });

  it('wrong credentials are a usage error saying what to check', async () => {
    const r = await remote({ credentials: { accessKeyId: 'nobody', secretAccessKey: 'wrong' } });
    await expect(r.list()).rejects.toMatchObject({ code: 'REMOTE_ACCESS_DENIED', exitCode: 2, message: expect.stringContaining('AWS_SECRET_ACCESS_KEY') });
  });

  it('an endpoint nobody listens on is reported as unreachable', async () => {
    const { createServer } = await import('node:net');
    const probe = createServer();
    const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)));
    await new Promise((resolve) => probe.close(resolve));
    const r = await remote({ endpoint: `http://127.0.0.1:${port}` });
    await expect(r.list()).rejects.toMatchObject({ code: 'REMOTE_UNREACHABLE', exitCode: 1, message: expect.stringContaining('ECONNREFUSED') });
  });

  it('bad URLs and endpoints are refused before any request', async () => {
    await expect(openRemote({ url: 'http://bucket/x' })).rejects.toMatchObject({ code: 'REMOTE_BAD_URL', exitCode: 2 });
    await expect(openRemote({ url: 's3://bucket', endpoint: 'localhost:9000' })).rejects.toMatchObject({ code: 'REMOTE_BAD_ENDPOINT', exitCode: 2 });
  });
});
