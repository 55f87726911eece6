import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '@graft/core';
import type { CurvePoint } from '@graft/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildNetwork, initBackend, networkVariables, readWeights } from '@graft/model';
import type { ModelLogger, NetworkSpec } from '@graft/model';
import { syntheticImages } from '@graft/data';
import { EVALUATION_ENV, openCurveEvaluator } from './curve-evaluation.ts';
import { BASE_CACHE_ENV } from './frozen-base.ts';
import { shuffledPlan } from './plans.ts';
import { trainLoop } from './train-loop.ts';
import type { TrainOptions } from './train-loop.ts';

const tiny: NetworkSpec = { rows: 8, cols: 8, filters: 3, kernelSize: 3, hidden: 16, numClasses: 3, dropoutRate: 0.3 };
const train = syntheticImages({ length: 120, rows: 8, cols: 8, numClasses: 3, seed: 1 });
const validation = syntheticImages({ length: 2500, rows: 8, cols: 8, numClasses: 3, seed: 2 });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'graft-curve-eval-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  delete process.env[EVALUATION_ENV];
  delete process.env[BASE_CACHE_ENV];
});

/** OS threads of this process: a worker thread is one, and it is gone once terminated. */
function threadCount(): number {
  return Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
}

interface LogLine {
  level: 'info' | 'warn';
  obj: Record<string, unknown>;
  msg?: string;
}

function recordingLogger(lines: LogLine[]): ModelLogger {
  return {
    info: (obj, msg) => lines.push({ level: 'info', obj: { ...obj }, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj: { ...obj }, msg }),
  };
}

/** Log lines without the wall-clock field, which differs between any two runs. */
function comparable(lines: LogLine[]): LogLine[] {
  return lines.map(({ level, obj, msg }) => {
    const { msPerStep: _ignored, ...rest } = obj;
    return { level, obj: rest, msg };
  });
}

async function run(evaluation: 'inline' | 'worker', trainable: 'all' | 'head', name: string) {
  const model = buildNetwork(tiny, new Rng(7));
  const lines: LogLine[] = [];
  const options: TrainOptions = {
    model,
    train,
    validation,
    epochs: 3,
    // 12 batches an epoch, a point every 5: points at batches 5 and 10, none at the epoch end.
    plan: shuffledPlan(train.length, 10, 12),
    rng: new Rng(3),
    learningRate: 1e-2,
    l2: 0.001,
    keepProb: 0.7,
    evalEvery: 5,
    trainable,
    regularise: trainable === 'all' ? ['convKernel', 'fc1Kernel', 'headKernel'] : ['headKernel'],
    evaluation,
    logger: recordingLogger(lines),
    // Progress updates in the same list: their place among the curve's lines, and the val
    // field they carry, must be the in-thread ones too.
    progress: { start() {}, update: (current, fields) => lines.push({ level: 'info', obj: { progress: current, ...fields } }), stop() {} },
    checkpoint: { dir: join(dir, name), resume: false, fingerprint: 'f' },
  };
  try {
    const result = await trainLoop(options);
    return { result, lines, weights: readWeights(networkVariables(model)) };
  } finally {
    model.dispose();
  }
}

describe('curve evaluation on a worker thread', () => {
  it.each([
    ['cpu', 'all'],
    ['cpu', 'head'],
    ['wasm', 'all'],
    ['wasm', 'head'],
  ] as const)('%s, trainable %s: the same curve, log lines, progress updates and weights as on the training thread', async (backend, trainable) => {
    await initBackend(backend);
    const inline = await run('inline', trainable, `${backend}-${trainable}-inline`);
    const worker = await run('worker', trainable, `${backend}-${trainable}-worker`);
    expect(inline.result.curve.map((p: CurvePoint) => [p.epoch, p.batch])).toEqual([
      [1, 5], [1, 10], [2, 5], [2, 10], [3, 5], [3, 10],
    ]);
    // Exact equality: the worker runs the same kernels on the same bits.
    expect(worker.result.curve).toEqual(inline.result.curve);
    expect(comparable(worker.lines)).toEqual(comparable(inline.lines));
    expect(inline.lines.filter((l) => 'progress' in l.obj)).toHaveLength(36);
    expect(worker.weights).toEqual(inline.weights);
    if (trainable === 'head') {
      // Head only, both evaluators above kept the frozen base's validation features (and the
      // loop its conv+pool outputs); without any of it, the same curve and weights.
      process.env[BASE_CACHE_ENV] = 'off';
      const uncached = await run('inline', trainable, `${backend}-${trainable}-uncached`);
      delete process.env[BASE_CACHE_ENV];
      expect(uncached.result.curve).toEqual(worker.result.curve);
      expect(uncached.weights).toEqual(worker.weights);
    }
    // Training learned something, so equal curves are not equal by being trivial.
    const vals = inline.result.curve.map((p) => p.valAccuracy);
    expect(new Set(vals).size).toBeGreaterThan(1);
  });

  it.skipIf(process.platform !== 'linux')('reports a failing evaluation as EVALUATION_FAILED and stops the worker', async () => {
    await initBackend('cpu');
    const threadsBefore = threadCount();
    const model = buildNetwork(tiny, new Rng(1));
    const vars = networkVariables(model);
    const recorded: CurvePoint[] = [];
    // A spec that does not fit the weights: the worker's forward pass throws on shapes.
    const wrong: NetworkSpec = { ...tiny, filters: 4 };
    const evaluator = openCurveEvaluator({ mode: 'worker', vars, spec: wrong, validation, trained: ['headKernel'], record: (p) => recorded.push(p) });
    try {
      const x = new Float32Array(10 * 64);
      const y = new Int32Array(10);
      // The worker starts at the first point, not before.
      expect(threadCount()).toBe(threadsBefore);
      await evaluator.submit({ epoch: 1, batch: 1, step: 1, loss: 1 }, { x, y, size: 10 }, 1);
      expect(threadCount()).toBeGreaterThan(threadsBefore);
      await expect(evaluator.drain()).rejects.toMatchObject({ code: 'EVALUATION_FAILED', message: expect.stringContaining(EVALUATION_ENV) });
      await expect(evaluator.submit({ epoch: 1, batch: 2, step: 2, loss: 1 }, { x, y, size: 10 }, 1)).rejects.toMatchObject({ code: 'EVALUATION_FAILED' });
      expect(recorded).toEqual([]);
    } finally {
      await evaluator.close();
      model.dispose();
    }
    expect(threadCount()).toBe(threadsBefore);
  });

  it.skipIf(process.platform !== 'linux')('stops the worker when training fails part-way (no thread left behind)', async () => {
    await initBackend('cpu');
    const threadsBefore = threadCount();
    const model = buildNetwork(tiny, new Rng(7));
    const crash = () => {
      throw new Error('simulated failure');
    };
    await expect(
      trainLoop({
        model, train, validation, epochs: 2, plan: shuffledPlan(train.length, 10, 12), rng: new Rng(3), learningRate: 1e-2, l2: 0.001,
        keepProb: 0.7, evalEvery: 5, trainable: 'all', regularise: ['headKernel'], evaluation: 'worker', onEpochEnd: crash,
      }),
    ).rejects.toThrow('simulated failure');
    model.dispose();
    expect(threadCount()).toBe(threadsBefore);
  });
});
