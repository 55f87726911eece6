import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { InputArtifact } from '@graft/core';
import { computeKey } from '../key.ts';
import type { ArtifactStore, PublishInfo } from '../store.ts';

export function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'graft-artifacts-'));
}

export function keyFor(stage: string, params: unknown, inputs: Record<string, string> = {}): string {
  return computeKey({ stage, stageVersion: '1', params, inputs });
}

export function publishInfo(params: unknown, metrics: Record<string, unknown> = {}): PublishInfo {
  return { stageVersion: '1', params, inputs: {}, durationMs: 12, producer: { graft: '0.1.0', node: process.version, backend: 'cpu' }, metrics };
}

/** Builds and publishes one artifact with the given files (relative POSIX path -> content). */
export async function buildArtifact(store: ArtifactStore, stage: string, params: unknown, files: Record<string, string | Uint8Array>): Promise<InputArtifact> {
  const key = keyFor(stage, params);
  const pending = await store.begin(stage, key);
  for (const [path, content] of Object.entries(files)) {
    const file = join(pending.outDir, ...path.split('/'));
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, content);
  }
  return store.publish(pending, publishInfo(params, { files: Object.keys(files).length }));
}
