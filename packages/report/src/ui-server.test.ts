import { request } from 'node:http';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore, computeKey } from '@graft/artifacts';
import { pathSegments, startUiServer, type UiServer } from './ui-server.ts';
import { fixtureRun, tempStore, writeRun } from './test-fixtures.ts';

let root: string;
let server: UiServer;
// Real keys: verify re-derives each artifact's key from its manifest.
const key = computeKey({ stage: 'phase-one', stageVersion: '2', params: { seed: 1 }, inputs: {} });
const other = computeKey({ stage: 'phase-one', stageVersion: '2', params: { seed: 2 }, inputs: {} });

/** A raw GET: the path goes on the wire exactly as written (fetch would normalise `..`). */
function get(path: string, method = 'GET'): Promise<{ status: number; type: string | undefined; body: string }> {
  const url = new URL(server.url);
  return new Promise((done, fail) => {
    const req = request({ host: url.hostname, port: url.port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => done({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('error', fail);
    req.end();
  });
}

beforeAll(async () => {
  root = await tempStore();
  const store = new ArtifactStore(root);
  for (const [k, seed] of [[key, 1], [other, 2]] as const) {
    const pending = await store.begin('phase-one', k);
    await mkdir(join(pending.outDir, 'model'), { recursive: true });
    await writeFile(join(pending.outDir, 'model', 'model.json'), '{"modelTopology":{}}');
    await writeFile(join(pending.outDir, 'model', 'weights.bin'), Buffer.from([1, 2, 3, 4]));
    await writeFile(join(pending.outDir, 'metrics.json'), '{"testAccuracy":0.5}');
    await store.publish(pending, { stageVersion: '2', params: { seed }, inputs: {}, durationMs: 5, producer: { graft: '0.1.0', node: 'v22', tfjs: '4', backend: 'wasm' } as never, metrics: {} });
  }
  // Files a manifest does not list, and symlinks, inside and around the artifact.
  await writeFile(join(root, 'phase-one', key, 'extra.txt'), 'not listed');
  await writeFile(join(root, 'secret.txt'), 'outside any artifact');
  await symlink(join(root, 'secret.txt'), join(root, 'phase-one', key, 'link.json'));
  await symlink(join(root, 'phase-one', other), join(root, 'phase-one', 'c'.repeat(64)));
  await writeRun(root, fixtureRun({ runId: 'run-a', createdAt: '2026-11-20T10:00:00.000Z' }));
  server = await startUiServer({ storeRoot: root, port: 0 });
});
afterAll(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
});

describe('graft ui server', () => {
  it('binds to 127.0.0.1 by default', () => {
    expect(new URL(server.url).hostname).toBe('127.0.0.1');
  });

  it('serves files a manifest lists, by stage and key, with their content types', async () => {
    const json = await get(`/store/phase-one/${key}/model/model.json`);
    expect(json).toMatchObject({ status: 200, type: 'application/json; charset=utf-8', body: '{"modelTopology":{}}' });
    const bin = await get(`/store/phase-one/${key}/model/weights.bin`);
    expect(bin.status).toBe(200);
    expect(bin.type).toBe('application/octet-stream');
    expect((await get(`/store/phase-one/${key}/manifest.json`)).status).toBe(200);
    expect((await get(`/store/phase-one/${key}/model/model.json`, 'HEAD')).status).toBe(200);
  });

  it.each([
    ['an unlisted file in the artifact', `/store/phase-one/${key}/extra.txt`],
    ['a symlink the manifest does not list', `/store/phase-one/${key}/link.json`],
    ['an artifact directory that is a symlink', `/store/phase-one/${'c'.repeat(64)}/model/model.json`],
    ['..', `/store/phase-one/${key}/../../secret.txt`],
    ['.. at the start', '/store/../secret.txt'],
    ['encoded ..', `/store/phase-one/${key}/%2e%2e/%2e%2e/secret.txt`],
    ['encoded .. in capitals', `/store/phase-one/${key}/%2E%2E/%2E%2E/secret.txt`],
    ['an encoded slash', `/store/phase-one/${key}/..%2f..%2fsecret.txt`],
    ['an encoded backslash', `/store/phase-one/${key}/..%5c..%5csecret.txt`],
    ['an absolute path', '/store//etc/passwd'],
    ['an absolute path, encoded', '/store/%2fetc%2fpasswd'],
    ['an absolute path as the whole request', '//etc/passwd'],
    ['the store root file', '/store/secret.txt'],
    ['a file next to artifacts', '/secret.txt'],
    ['run records (no manifest lists them)', '/store/runs/run-a/run.json'],
    ['a bad key', '/store/phase-one/not-a-key!/model/model.json'],
    ['a NUL byte', `/store/phase-one/${key}/model/model.json%00`],
    ['a bad escape', `/store/phase-one/${key}/%zz`],
    ['a directory', `/store/phase-one/${key}/model`],
  ])('404 for %s', async (_, path) => {
    const response = await get(path);
    expect(response.status).toBe(404);
    expect(response.body).not.toContain('outside any artifact');
  });

  it('names a port in use and exits 2 instead of serving nothing', async () => {
    const port = Number(new URL(server.url).port);
    await expect(startUiServer({ storeRoot: root, port })).rejects.toMatchObject({ code: 'UI_PORT_IN_USE', exitCode: 2 });
  });

  it('is read-only', async () => {
    expect((await get(`/store/phase-one/${key}/model/model.json`, 'PUT')).status).toBe(405);
    expect((await get('/api/runs', 'DELETE')).status).toBe(405);
  });

  it('lists runs and artifacts and builds the report body through the API', async () => {
    const runs = JSON.parse((await get('/api/runs')).body);
    expect(runs.runs.map((r: { runId: string }) => r.runId)).toEqual(['run-a']);
    const artifacts = JSON.parse((await get('/api/artifacts')).body);
    expect(artifacts.map((a: { key: string }) => a.key).sort()).toEqual([key, other]);
    const detail = JSON.parse((await get(`/api/artifacts/phase-one/${key}`)).body);
    // The symlink planted in this artifact (above) is what the store's verify reports.
    expect(detail.verify.ok).toBe(false);
    expect(detail.verify.problems).toEqual([expect.stringContaining('link.json')]);
    expect(detail.manifest.files.map((f: { path: string }) => f.path).sort()).toEqual(['metrics.json', 'model/model.json', 'model/weights.bin']);
    const report = JSON.parse((await get('/api/report?runs=run-a')).body);
    expect(report.html).toContain('run-a');
    expect(Object.keys(report.specs)).toContain('curves-phase-two');
    expect((await get('/api/report?runs=nope')).status).toBe(404);
    expect((await get('/lib/tfjs.js')).type).toBe('text/javascript; charset=utf-8');
  });

  it('reports a corrupt artifact in its verify status', async () => {
    await writeFile(join(root, 'phase-one', other, 'model', 'weights.bin'), Buffer.from([9, 9, 9, 9]));
    const detail = JSON.parse((await get(`/api/artifacts/phase-one/${other}`)).body);
    expect(detail.verify.ok).toBe(false);
    expect(detail.verify.problems.join(' ')).toContain('weights.bin');
  });
});

describe('pathSegments', () => {
  it('decodes each segment once and refuses anything that could climb', () => {
    expect(pathSegments('/store/a/b%20c')).toEqual(['store', 'a', 'b c']);
    for (const bad of ['/a/../b', '/a/./b', '/a//b', '/a/', '/%2e%2e', '/a%2fb', 'relative', '/%00']) expect(() => pathSegments(bad)).toThrow();
  });
});
