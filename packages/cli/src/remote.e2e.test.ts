/**
 * `graft artifacts push|pull` and `graft run --remote` as black boxes: real graft
 * processes, a real S3 API server (s3rver) on 127.0.0.1, small artifacts built by
 * `graft run split` from a generated slice of MNIST.
 */
import { createServer, request } from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { writeMnistSlice, writeTinyChain } from '@graft/testing';
import { blobObject, parseRemoteUrl } from '@graft/remote';
import { S3RVER_CREDENTIALS, startS3Server, type TestS3Server } from '@graft/remote/test-s3-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graft, lastJson, logRecords, ls, plainLines, startGraft, waitFor, type GraftResult } from './test-support.ts';

let server: TestS3Server;
let admin: S3Client;
let work: string;
/** Store A: ingest + split built once by `graft run split`. */
let source: string;
let built: Array<{ stage: string; key: string }>;

const store = (name: string): string => join(work, name);
const remoteUrl = (prefix: string): string => `s3://${server.bucket}/${prefix}`;

/** `graft <args>` with the server's credentials and endpoint in the environment. */
function g(args: string[]): Promise<GraftResult> {
  return graft(args, work, { ...server.env, AWS_ENDPOINT_URL: server.endpoint });
}

async function lsJson(storeDir: string): Promise<Array<{ stage: string; key: string }>> {
  const result = await g(['artifacts', 'ls', '--json', '--artifacts', storeDir]);
  expect(result.code).toBe(0);
  return lastJson(result.stdout).map((a: { stage: string; key: string }) => ({ stage: a.stage, key: a.key }));
}

async function manifestOf(stage: string, key: string): Promise<{ files: Array<{ path: string; sha256: string }> }> {
  const result = await g(['artifacts', 'show', `${stage}/${key}`, '--artifacts', source]);
  return JSON.parse(result.stdout);
}

beforeAll(async () => {
  server = await startS3Server();
  admin = new S3Client({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: S3RVER_CREDENTIALS });
  work = await mkdtemp(join(tmpdir(), 'graft-remote-cli-'));
  await writeTinyChain(join(work, 'tiny.json'), { source: await writeMnistSlice(join(work, 'idx')), upTo: 'split' });
  source = store('a');
  const run = await g(['run', 'split', '--config', 'tiny.json', '--artifacts', source, '--json']);
  expect(run.code, run.stderr).toBe(0);
  built = await lsJson(source);
  expect(built.map((a) => a.stage).sort()).toEqual(['ingest', 'split']);
});

afterAll(async () => {
  admin?.destroy();
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('graft artifacts push / pull', () => {
  it('pushes a store and pulls it into an empty one, verified and usable as a cache', async () => {
    const push = await g(['artifacts', 'push', '--remote', remoteUrl('p1'), '--artifacts', source, '--json']);
    expect(push.code, push.stderr).toBe(0);
    expect(lastJson(push.stdout)).toMatchObject({ remote: remoteUrl('p1'), direction: 'push' });
    expect(lastJson(push.stdout).artifacts.map((a: { outcome: string }) => a.outcome)).toEqual(['uploaded', 'uploaded']);
    const again = await g(['artifacts', 'push', '--remote', remoteUrl('p1'), '--artifacts', source]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('2 artifacts: 0 uploaded (0 B), 2 already on s3://graft-test/p1, 0 failed');

    const target = store('b');
    const pull = await g(['artifacts', 'pull', '--remote', remoteUrl('p1'), '--artifacts', target, '--json']);
    expect(pull.code, pull.stderr).toBe(0);
    expect(lastJson(pull.stdout).artifacts.map((a: { outcome: string }) => a.outcome)).toEqual(['downloaded', 'downloaded']);
    expect((await g(['artifacts', 'verify', '--artifacts', target])).code).toBe(0);
    expect(await lsJson(target)).toEqual(built);
    expect(await ls(join(target, '.tmp'))).toEqual([]);
    // The pulled artifacts are the cache: the same run builds nothing.
    const run = await g(['run', 'split', '--config', 'tiny.json', '--artifacts', target, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(Object.values(lastJson(run.stdout).stages).map((s: any) => s.cached)).toEqual([true, true]);
  });

  it('pulls only what the selectors name', async () => {
    const split = built.find((a) => a.stage === 'split')!;
    expect((await g(['artifacts', 'push', `split/${split.key.slice(0, 8)}`, '--remote', remoteUrl('p6'), '--artifacts', source])).code).toBe(0);
    const target = store('sel');
    const pull = await g(['artifacts', 'pull', '--remote', remoteUrl('p6'), '--artifacts', target]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(await lsJson(target)).toEqual([split]);
    const missing = await g(['artifacts', 'pull', 'ingest/', '--remote', remoteUrl('p6'), '--artifacts', target]);
    expect(missing.code).toBe(2);
    expect(plainLines(missing.stderr)).toEqual([expect.stringContaining('No artifact on s3://graft-test/p6 matches "ingest/"')]);
  });

  it('detects a corrupted remote object on pull and publishes nothing of that artifact', async () => {
    expect((await g(['artifacts', 'push', '--remote', remoteUrl('p2'), '--artifacts', source])).code).toBe(0);
    const split = built.find((a) => a.stage === 'split')!;
    const file = (await manifestOf('split', split.key)).files[0]!;
    const name = blobObject(parseRemoteUrl(remoteUrl('p2')), file.sha256);
    const bytes = await (await admin.send(new GetObjectCommand({ Bucket: server.bucket, Key: name }))).Body!.transformToByteArray();
    bytes[bytes.length >> 1] ^= 0xff;
    await admin.send(new PutObjectCommand({ Bucket: server.bucket, Key: name, Body: bytes }));

    const target = store('c');
    const pull = await g(['artifacts', 'pull', '--remote', remoteUrl('p2'), '--artifacts', target]);
    expect(pull.code).toBe(1);
    expect(pull.stdout).toMatch(/^downloaded +ingest\//m);
    expect(pull.stdout).toMatch(/^FAILED +split\//m);
    expect(pull.stdout).toContain(`${file.path}: sha256 mismatch`);
    expect(plainLines(pull.stderr).join('\n')).toContain('1 artifact(s) could not be pulled');
    expect((await lsJson(target)).map((a) => a.stage)).toEqual(['ingest']);
    expect(await ls(join(target, 'split'))).toEqual([]);
    expect(await ls(join(target, '.tmp'))).toEqual([]);

    // `graft run --remote` builds the corrupt one here instead, and replaces the remote copy.
    const worker = store('c2');
    const run = await g(['run', 'split', '--config', 'tiny.json', '--artifacts', worker, '--remote', remoteUrl('p2'), '--json']);
    expect(run.code, run.stderr).toBe(0);
    const stages = lastJson(run.stdout).stages;
    expect([stages.ingest.pulled, stages.split.cached]).toEqual([true, false]);
    expect(logRecords(run.stderr).some((r) => r.level >= 40 && String(r.msg).includes('the remote copy will be replaced'))).toBe(true);
    const repaired = await g(['artifacts', 'pull', '--remote', remoteUrl('p2'), '--artifacts', store('c3')]);
    expect(repaired.code, repaired.stdout).toBe(0);
  });

  it('concurrent pushes of the same keys all succeed and leave artifacts that verify', async () => {
    const pushes = await Promise.all([0, 1, 2].map(() => g(['artifacts', 'push', '--remote', remoteUrl('p3'), '--artifacts', source, '--json'])));
    for (const push of pushes) expect(push.code, push.stderr).toBe(0);
    // Every key was uploaded by at least one of them (others may have found it already there).
    const outcomes = pushes.flatMap((p) => lastJson(p.stdout).artifacts.map((a: { stage: string; outcome: string }) => `${a.stage}:${a.outcome}`));
    expect(outcomes.filter((o) => o.endsWith(':uploaded')).map((o) => o.split(':')[0]).sort()).toEqual(expect.arrayContaining(['ingest', 'split']));
    const target = store('d');
    expect((await g(['artifacts', 'pull', '--remote', remoteUrl('p3'), '--artifacts', target])).code).toBe(0);
    expect((await g(['artifacts', 'verify', '--artifacts', target])).code).toBe(0);
    expect(await lsJson(target)).toEqual(built);
  });

  it('an upload without its manifest (interrupted push) is not pulled as an artifact', async () => {
    expect((await g(['artifacts', 'push', '--remote', remoteUrl('p4'), '--artifacts', source])).code).toBe(0);
    const split = built.find((a) => a.stage === 'split')!;
    // What a push killed between its last file and its manifest leaves behind.
    await admin.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: `p4/artifacts/split/${split.key}/manifest.json` }));
    const target = store('e');
    const pull = await g(['artifacts', 'pull', '--remote', remoteUrl('p4'), '--artifacts', target, '--json']);
    expect(pull.code, pull.stderr).toBe(0);
    expect(lastJson(pull.stdout).artifacts.map((a: { stage: string }) => a.stage)).toEqual(['ingest']);
    expect((await lsJson(target)).map((a) => a.stage)).toEqual(['ingest']);
    // The next push completes it.
    const push = await g(['artifacts', 'push', '--remote', remoteUrl('p4'), '--artifacts', source, '--json']);
    expect(lastJson(push.stdout).artifacts.map((a: { stage: string; outcome: string }) => `${a.stage}:${a.outcome}`)).toEqual(['ingest:present', 'split:uploaded']);
  });
});

describe('a push killed at its commit point', () => {
  it('kill -9 after the files, before the manifest: nothing is an artifact, the next push completes it', async () => {
    // A loopback proxy in front of the server that never answers a manifest PUT: the
    // moment one arrives, every file of that artifact is uploaded and graft is killed.
    const port = Number(new URL(server.endpoint).port);
    let commits = 0;
    const proxy = createServer((req, res) => {
      // The SDK appends ?x-id=PutObject: match the path alone.
      if (req.method === 'PUT' && /\/artifacts\/[^/]+\/[^/]+\/manifest\.json$/.test(new URL(req.url ?? '/', 'http://proxy').pathname)) {
        commits++;
        return;
      }
      const upstream = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (response) => {
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
      });
      req.pipe(upstream);
    });
    const proxyPort = await new Promise<number>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve((proxy.address() as { port: number }).port)));
    try {
      const push = startGraft(['artifacts', 'push', '--remote', remoteUrl('p7'), '--artifacts', source], work, { ...server.env, AWS_ENDPOINT_URL: `http://127.0.0.1:${proxyPort}` });
      await waitFor(async () => (commits > 0 ? true : undefined), 'the first manifest upload', 120_000);
      await push.kill9();
      expect(push.output().stdout).toBe('');
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
    const objects = await admin.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: 'p7/' }));
    const names = (objects.Contents ?? []).map((o) => o.Key!);
    expect(names.length).toBeGreaterThan(0);
    expect(names.every((name) => name.startsWith('p7/files/sha256/'))).toBe(true);

    const target = store('killed');
    const pull = await g(['artifacts', 'pull', '--remote', remoteUrl('p7'), '--artifacts', target, '--json']);
    expect(pull.code, pull.stderr).toBe(0);
    expect(lastJson(pull.stdout).artifacts).toEqual([]);
    const again = await g(['artifacts', 'push', '--remote', remoteUrl('p7'), '--artifacts', source, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(lastJson(again.stdout).artifacts.map((a: { outcome: string }) => a.outcome)).toEqual(['uploaded', 'uploaded']);
    expect((await g(['artifacts', 'pull', '--remote', remoteUrl('p7'), '--artifacts', target])).code).toBe(0);
    expect(await lsJson(target)).toEqual(built);
  });
});

describe('graft run --remote', () => {
  it('pulls what the remote has instead of building, and pushes what it builds', async () => {
    // Worker 1 builds into an empty remote and pushes; worker 2, with an empty store, builds nothing.
    const first = await g(['run', 'split', '--config', 'tiny.json', '--artifacts', store('w1'), '--remote', remoteUrl('p5'), '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(Object.values(lastJson(first.stdout).stages).map((s: any) => [s.cached, s.pulled ?? false])).toEqual([[false, false], [false, false]]);
    // With --json, stderr stays pure NDJSON (no SDK notices).
    expect(first.stderr.split('\n').filter(Boolean).every((line) => line.startsWith('{'))).toBe(true);
    expect(logRecords(first.stderr).filter((r) => String(r.msg).includes('pushed')).length).toBe(2);

    const second = await g(['run', 'split', '--config', 'tiny.json', '--artifacts', store('w2'), '--remote', remoteUrl('p5'), '--json']);
    expect(second.code, second.stderr).toBe(0);
    const stages = lastJson(second.stdout).stages;
    expect([stages.ingest.pulled, stages.split.pulled, stages.ingest.key, stages.split.key]).toEqual([true, true, lastJson(first.stdout).stages.ingest.key, lastJson(first.stdout).stages.split.key]);
    expect((await g(['artifacts', 'verify', '--artifacts', store('w2')])).code).toBe(0);
    const runs = await readdir(join(store('w2'), 'runs'));
    expect(runs).toHaveLength(1);
  });
});

describe('bad remotes are one clear error', () => {
  it.each([
    [['artifacts', 'push', '--remote', 'http://bucket/x'], /only s3:\/\/ remotes exist.*s3:\/\/BUCKET\/PREFIX/],
    [['artifacts', 'pull', '--remote', 's3://Bad_Bucket'], /not a valid bucket name.*s3:\/\/BUCKET\/PREFIX/],
    [['run', 'split', '--config', 'tiny.json', '--remote', 's3://bucket/a/../b'], /"\.\." segment.*s3:\/\/BUCKET\/PREFIX/],
    [['artifacts', 'push', '--remote', 's3://graft-test/x', '--endpoint', 'localhost:9000'], /Invalid S3 endpoint "localhost:9000".*--endpoint http:\/\/127\.0\.0\.1:9000/],
  ])('%j exits 2 before doing anything', async (args, message) => {
    const target = store(`bad-${Math.random().toString(16).slice(2)}`);
    const result = await g([...args, '--artifacts', target]);
    expect(result.code, result.stderr).toBe(2);
    expect(plainLines(result.stderr)).toEqual([expect.stringMatching(message)]);
    // Nothing created: no store, no run record.
    expect(await ls(target)).toEqual([]);
  });

  it('a missing --remote, a missing bucket and unknown credentials exit 2 saying what to fix', async () => {
    const noRemote = await g(['artifacts', 'pull', '--artifacts', store('f')]);
    expect([noRemote.code, plainLines(noRemote.stderr)]).toEqual([2, [expect.stringContaining('--remote s3://BUCKET/PREFIX (or set GRAFT_REMOTE)')]]);
    const noBucket = await g(['artifacts', 'push', '--remote', 's3://no-such-bucket/x', '--artifacts', source]);
    expect([noBucket.code, plainLines(noBucket.stderr)]).toEqual([2, [expect.stringContaining('the bucket "no-such-bucket" does not exist')]]);
    const denied = await graft(['artifacts', 'pull', '--remote', remoteUrl('p1'), '--artifacts', store('g')], work, {
      ...server.env,
      AWS_ENDPOINT_URL: server.endpoint,
      AWS_ACCESS_KEY_ID: 'nobody',
    });
    expect([denied.code, plainLines(denied.stderr)]).toEqual([2, [expect.stringContaining('access denied')]]);
  });
});
