/**
 * A separate process that builds one artifact, for the crash and race tests.
 * argv: <root> <stage> <params JSON> <mode> [delayMs]; the key is keyFor(stage, params), so the
 * published manifest re-derives it (verify checks that).
 *   mode 'publish'               build and publish (after delayMs, to widen the race window)
 *   mode 'crash-before-publish'  SIGKILL itself after writing the files, before publish()
 *   mode 'crash-before-rename'   SIGKILL itself inside publish(), manifest written, before the rename
 * Prints one JSON line: { pid, winner } where winner is the pid recorded in the published manifest.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArtifactStore } from '../store.ts';
import { keyFor } from './helpers.ts';

const [root, stage, paramsJson, mode, delay] = process.argv.slice(2);
if (!root || !stage || !paramsJson || !mode) throw new Error('usage: build-child <root> <stage> <params JSON> <mode> [delayMs]');
const params = JSON.parse(paramsJson) as unknown;
const key = keyFor(stage, params);

const die = (): void => {
  process.kill(process.pid, 'SIGKILL');
};
const store = new ArtifactStore(root, {
  lockTimeoutMs: 60_000,
  ...(mode === 'crash-before-rename' ? { beforeRename: die } : {}),
});
const pending = await store.begin(stage, key);
// Same key, same content: both racers write identical files; only the manifest's metrics differ.
const payload = Buffer.alloc(256 * 1024, key.charCodeAt(0));
await writeFile(join(pending.outDir, 'data.bin'), payload);
await mkdir(join(pending.outDir, 'nested'));
await writeFile(join(pending.outDir, 'nested', 'note.txt'), `built for ${key}\n`);
await writeFile(join(pending.checkpointDir, 'ckpt.json'), '{"step":1}');
if (mode === 'crash-before-publish') die();
await new Promise((resolve) => setTimeout(resolve, Number(delay ?? 0)));
const artifact = await store.publish(pending, {
  stageVersion: '1',
  params,
  inputs: {},
  durationMs: 1,
  producer: { graft: 'test', node: process.version },
  metrics: { pid: process.pid },
});
process.stdout.write(`${JSON.stringify({ pid: process.pid, winner: artifact.manifest.metrics['pid'] })}\n`);
