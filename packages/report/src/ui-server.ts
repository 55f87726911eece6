import { constants, createReadStream } from 'node:fs';
import { lstat, open, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ArtifactStore, KEY_PATTERN, MANIFEST_FILE, STAGE_NAME, readManifest } from '@graft/artifacts';
import { REPORT_ERROR_CODES } from './error-codes.ts';
import { GraftError, UsageError } from '@graft/core';
import type { ArtifactManifest } from '@graft/core';
import { listRuns, resolveRunRefs, runLogPath, type RunRecord } from '@graft/runs';
import { summariseRun } from './list.ts';
import { asset, browserLibrary, type BrowserLibrary } from './report-html.ts';
import { escapeHtml } from './lineage.ts';
import { buildReportModel, storeLookup } from './report-model.ts';
import { reportBody } from './report-html.ts';

/** Content types by file extension; anything else is served as bytes. */
const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json; charset=utf-8',
  '.ndjson': 'application/x-ndjson; charset=utf-8',
  '.bin': 'application/octet-stream',
  '.arrow': 'application/vnd.apache.arrow.file',
  '.txt': 'text/plain; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
};

export function contentType(path: string): string {
  const dot = path.lastIndexOf('.');
  return (dot >= 0 && CONTENT_TYPES[path.slice(dot).toLowerCase()]) || 'application/octet-stream';
}

/** The UI's own files: a fixed list, never a path from the request. */
const STATIC: Record<string, { type: string; read: () => Promise<string> }> = {
  '/static/ui.js': { type: CONTENT_TYPES['.js']!, read: () => asset('ui.js') },
  '/static/ui.css': { type: CONTENT_TYPES['.css']!, read: () => asset('ui.css') },
  '/static/report.css': { type: CONTENT_TYPES['.css']!, read: () => asset('report.css') },
  '/static/report-client.js': { type: CONTENT_TYPES['.js']!, read: () => asset('report-client.js') },
  ...Object.fromEntries(
    (['vega.js', 'vega-lite.js', 'vega-embed.js', 'tfjs.js'] as BrowserLibrary[]).map((name) => [`/lib/${name}`, { type: CONTENT_TYPES['.js']!, read: () => browserLibrary(name) }]),
  ),
};

export interface UiServerOptions {
  storeRoot: string;
  /** Default 127.0.0.1: the store is private until the user says otherwise. */
  host?: string;
  /** 0 = any free port. */
  port?: number;
}

export interface UiServer {
  url: string;
  close(): Promise<void>;
}

class NotFound extends Error {}

/**
 * A request path as segments, each percent-decoded once. Anything that could step out of
 * where it points (empty segments from `//` or a trailing slash, `.`, `..`, a decoded `/`
 * or `\`, NUL, bad escapes) makes the whole path not found: no normalisation guesses.
 */
export function pathSegments(rawPath: string): string[] {
  if (!rawPath.startsWith('/')) throw new NotFound();
  if (rawPath === '/') return [];
  const segments = rawPath.slice(1).split('/');
  return segments.map((raw) => {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      throw new NotFound();
    }
    if (segment === '' || segment === '.' || segment === '..' || /[/\\\0]/.test(segment)) throw new NotFound();
    return segment;
  });
}

/** Fails unless every component from the store root down to `parts` is a real directory or file, not a symlink. */
async function assertNoSymlinks(root: string, parts: string[]): Promise<void> {
  let path = root;
  for (const part of parts) {
    path = join(path, part);
    let info;
    try {
      info = await lstat(path);
    } catch {
      throw new NotFound();
    }
    if (info.isSymbolicLink()) throw new NotFound();
  }
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

function sendJson(res: ServerResponse, value: unknown, status = 200): void {
  send(res, status, CONTENT_TYPES['.json']!, JSON.stringify(value));
}

/** A running run's progress: finished entries of its config, and the last progress log record. */
async function progressOf(storeRoot: string, run: RunRecord): Promise<{ done: number; total: number; current: string | null; message: string | null }> {
  const entries = (run.config as { entries?: unknown } | undefined)?.entries;
  const total = Array.isArray(entries) ? entries.length : Object.keys(run.stages).length;
  let message: string | null = null;
  let current: string | null = null;
  try {
    const log = await readFile(runLogPath(storeRoot, run.runId), 'utf8');
    const lines = log.trimEnd().split('\n');
    for (let i = lines.length - 1; i >= 0 && i >= lines.length - 200; i--) {
      try {
        const record = JSON.parse(lines[i]!) as Record<string, unknown>;
        if (typeof record['msg'] === 'string') {
          message = record['msg'];
          if (typeof record['entry'] === 'string') current = record['entry'];
          break;
        }
      } catch {
        // a line being written right now
      }
    }
  } catch {
    // no log yet
  }
  return { done: Object.keys(run.stages).length, total, current, message };
}

/**
 * `graft ui`: a read-only HTTP server over one store. Pages: run list, compare (the
 * report's content, live), artifact browser, model playground. Store files are served only
 * when a manifest lists them (by stage and key); the UI's scripts come from a fixed list.
 */
export async function startUiServer(options: UiServerOptions): Promise<UiServer> {
  const storeRoot = options.storeRoot;
  const store = new ArtifactStore(storeRoot);
  const lookup = storeLookup(storeRoot);

  async function manifestOf(stage: string, key: string): Promise<ArtifactManifest> {
    if (!STAGE_NAME.test(stage) || !KEY_PATTERN.test(key)) throw new NotFound();
    await assertNoSymlinks(storeRoot, [stage, key, MANIFEST_FILE]);
    try {
      return await readManifest(join(storeRoot, stage, key, MANIFEST_FILE));
    } catch {
      throw new NotFound();
    }
  }

  async function serveStoreFile(res: ServerResponse, segments: string[], head: boolean): Promise<void> {
    const [stage, key, ...fileParts] = segments;
    if (!stage || !key || fileParts.length === 0) throw new NotFound();
    const manifest = await manifestOf(stage, key);
    const relative = fileParts.join('/');
    const listed = relative === MANIFEST_FILE || manifest.files.some((f) => f.path === relative);
    if (!listed) throw new NotFound();
    await assertNoSymlinks(storeRoot, [stage, key, ...fileParts]);
    const path = join(storeRoot, stage, key, ...fileParts);
    // O_NOFOLLOW: a file swapped for a symlink after the check above still does not open.
    let handle;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      throw new NotFound();
    }
    const info = await handle.stat();
    if (!info.isFile()) {
      await handle.close();
      throw new NotFound();
    }
    res.writeHead(200, { 'content-type': contentType(relative), 'content-length': info.size, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    if (head) {
      await handle.close();
      res.end();
      return;
    }
    const stream = createReadStream('', { fd: handle.fd, autoClose: false });
    await new Promise<void>((done) => {
      stream.on('error', () => res.destroy());
      stream.on('close', done);
      stream.pipe(res);
    });
    await handle.close();
  }

  async function api(res: ServerResponse, segments: string[], query: URLSearchParams): Promise<void> {
    const [what, ...rest] = segments;
    if (what === 'runs' && rest.length === 0) {
      const runs = await listRuns(storeRoot);
      const rows = await Promise.all(
        runs.map(async (run) => ({
          ...summariseRun(run),
          backend: run.backend.used ?? run.backend.requested,
          params: Object.fromEntries(Object.entries(run.stages).map(([entry, s]) => [entry, s.params])),
          progress: run.status === 'running' ? await progressOf(storeRoot, run) : null,
        })),
      );
      sendJson(res, { runs: rows, warnings: runs.warnings.map((w) => w.message) });
      return;
    }
    if (what === 'report' && rest.length === 0) {
      const refs = (query.get('runs') ?? '').split(',').filter((r) => r !== '');
      if (refs.length === 0) {
        sendJson(res, { error: 'Name runs: /api/report?runs=<id>,<id>' }, 400);
        return;
      }
      let runs;
      try {
        runs = await resolveRunRefs(storeRoot, refs);
      } catch (error) {
        if (error instanceof UsageError) {
          sendJson(res, { error: error.message }, 404);
          return;
        }
        throw error;
      }
      const body = reportBody(await buildReportModel(runs, lookup));
      sendJson(res, body);
      return;
    }
    if (what === 'artifacts' && rest.length === 0) {
      const manifests = await store.list();
      sendJson(
        res,
        manifests.map((m) => ({ stage: m.stage, key: m.key, createdAt: m.createdAt, durationMs: m.durationMs, bytes: m.files.reduce((s, f) => s + f.bytes, 0), files: m.files.length, inputs: m.inputs, model: m.files.some((f) => f.path === 'model/model.json') })),
      );
      return;
    }
    if (what === 'artifacts' && rest.length === 2) {
      const [stage, key] = rest as [string, string];
      const manifest = await manifestOf(stage, key);
      const [report] = await store.verify(`${stage}/${key}`);
      sendJson(res, { manifest, verify: report ? { ok: report.ok, problems: report.problems } : { ok: false, problems: ['not found'] } });
      return;
    }
    if (what === 'test-images' && rest.length === 1) {
      // The phase-two test set of a split artifact (every class, the held-out ones too),
      // decoded here: the browser gets pixels, never an Arrow file to parse.
      const key = rest[0]!;
      await manifestOf('split', key);
      const { readSplitInfo, readSplitData } = await import('@graft/data');
      const dir = join(storeRoot, 'split', key);
      const [info, test] = await Promise.all([readSplitInfo(dir), readSplitData(dir, 'phase-two', 'test')]);
      const offset = Math.max(0, Number(query.get('offset') ?? 0) | 0);
      const count = Math.min(Math.max(1, Number(query.get('n') ?? 200) | 0), 2000, Math.max(0, test.length - offset));
      const size = test.rows * test.cols;
      sendJson(res, {
        rows: test.rows,
        cols: test.cols,
        offset,
        count,
        total: test.length,
        heldOut: info.heldOut,
        labels: Array.from(test.labels.subarray(offset, offset + count)),
        indices: Array.from(test.indices.subarray(offset, offset + count)),
        pixels: Buffer.from(test.images.subarray(offset * size, (offset + count) * size)).toString('base64'),
      });
      return;
    }
    throw new NotFound();
  }

  async function page(res: ServerResponse): Promise<void> {
    const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>graft ui</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/report.css"><link rel="stylesheet" href="/static/ui.css">
</head><body>
<header><h1>graft ui <span class="dim">${escapeHtml(storeRoot)}</span></h1>
<nav id="tabs"><a href="#/runs" data-tab="runs">Runs</a> · <a href="#/compare" data-tab="compare">Compare</a> · <a href="#/artifacts" data-tab="artifacts">Artifacts</a> · <a href="#/playground" data-tab="playground">Playground</a></nav></header>
<main id="view"></main>
<script src="/lib/vega.js"></script><script src="/lib/vega-lite.js"></script><script src="/lib/vega-embed.js"></script>
<script src="/lib/tfjs.js"></script>
<script src="/static/report-client.js"></script><script src="/static/ui.js"></script>
</body></html>`;
    send(res, 200, CONTENT_TYPES['.html']!, html);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
      return;
    }
    const raw = req.url ?? '/';
    const queryAt = raw.indexOf('?');
    const rawPath = queryAt >= 0 ? raw.slice(0, queryAt) : raw;
    const query = new URLSearchParams(queryAt >= 0 ? raw.slice(queryAt + 1) : '');
    try {
      const staticFile = STATIC[rawPath];
      if (staticFile) {
        send(res, 200, staticFile.type, await staticFile.read());
        return;
      }
      const segments = pathSegments(rawPath);
      if (segments.length === 0) return await page(res);
      const [root, ...rest] = segments;
      if (root === 'store') return await serveStoreFile(res, rest, req.method === 'HEAD');
      if (root === 'api') return await api(res, rest, query);
      throw new NotFound();
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof NotFound) {
        send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
        return;
      }
      send(res, 500, 'text/plain; charset=utf-8', `graft ui: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((done, fail) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      fail(
        error.code === 'EADDRINUSE'
          ? new UsageError(REPORT_ERROR_CODES.uiPortInUse, `Port ${options.port} on ${host} is in use; pick another with --port.`)
          : new GraftError(REPORT_ERROR_CODES.uiListenFailed, `graft ui cannot listen on ${host}:${options.port ?? 0}: ${error.message}`, { cause: error }),
      ),
    );
    server.listen(options.port ?? 0, host, () => done());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
