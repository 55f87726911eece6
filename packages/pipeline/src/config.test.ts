import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_SEED, UsageError, defineStage, type StageDefinition } from '@graft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, MAX_CONFIG_BYTES, checkEntryName, entriesFor, pipelineJsonSchema, readConfigFile, resolveConfig, type StageRegistry } from './config.ts';

const noop = async () => ({ metrics: {} });
const registry: StageRegistry = new Map<string, StageDefinition>(
  [
    defineStage({ name: 'source', version: '1', description: 'makes data', inputs: {}, output: ['dataset'], params: z.strictObject({ rows: z.number().int().min(1).default(10) }), run: noop }),
    defineStage({ name: 'train', version: '1', description: 'trains', inputs: { data: 'dataset' }, output: ['model', 'training-metrics'], params: z.strictObject({ epochs: z.number().int().min(1).default(2), seed: z.number().int().min(0).default(0), mode: z.enum(['a', 'b']).default('a') }), run: noop }),
    defineStage({ name: 'graft', version: '1', description: 'two inputs', inputs: { model: 'model', data: 'dataset' }, output: ['model'], params: z.strictObject({ seed: z.number().int().default(0) }), run: noop }),
    defineStage({
      name: 'nested',
      version: '1',
      description: 'an object param',
      inputs: {},
      output: ['dataset'],
      params: z.strictObject({ opt: z.strictObject({ lr: z.number().default(1), sched: z.strictObject({ every: z.number().default(2) }).default({ every: 2 }) }).default({ lr: 1, sched: { every: 2 } }) }),
      run: noop,
    }),
  ].map((s) => [s.name, s as unknown as StageDefinition]),
);

const valid = {
  name: 'demo',
  entries: {
    src: { stage: 'source' },
    fit: { stage: 'train', inputs: { data: 'src' }, params: { epochs: 3 } },
    g: { stage: 'graft', inputs: { model: 'fit', data: 'src' } },
  },
};

function problemsOf(raw: unknown, overrides = {}): { path: string; message: string }[] {
  try {
    resolveConfig(raw, registry, 'test.json', overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(2);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveConfig', () => {
  it('fills defaults and orders entries after their inputs', () => {
    const config = resolveConfig({ entries: { g: valid.entries.g, fit: valid.entries.fit, src: valid.entries.src } }, registry, 'pipelines/demo.json');
    expect(config.name).toBe('demo');
    expect(config.backend).toBe('auto');
    expect(config.entries.map((e) => e.name)).toEqual(['src', 'fit', 'g']);
    expect(config.entries[1]!.params).toEqual({ epochs: 3, seed: 0, mode: 'a' });
  });

  it('reports every problem at once, with JSON paths', () => {
    const problems = problemsOf({
      entries: {
        src: { stage: 'source', params: { rows: 'many', colour: 1 } },
        fit: { stage: 'train', inputs: { data: 'nowhere' }, params: { epochs: -1, mode: 'c' } },
        odd: { stage: 'no-such-stage' },
        g: { stage: 'graft', inputs: { model: 'fit', extra: 'src' } },
      },
    });
    const paths = problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'entries.src.params.rows',
        'entries.src.params',
        'entries.fit.inputs.data',
        'entries.fit.params.epochs',
        'entries.fit.params.mode',
        'entries.odd.stage',
        'entries.g.inputs',
        'entries.g.inputs.extra',
      ]),
    );
    expect(problems.find((p) => p.path === 'entries.src.params')!.message).toContain('"colour"');
    expect(problems.find((p) => p.path === 'entries.odd.stage')!.message).toContain('known stages: source, train, graft, nested');
    expect(problems.find((p) => p.path === 'entries.fit.inputs.data')!.message).toContain('"nowhere"');
    expect(problems.find((p) => p.path === 'entries.g.inputs')!.message).toContain('missing input "data"');
  });

  it('checks artifact kinds: a slot fed an entry whose stage produces another kind is a config error', () => {
    // graft's model slot fed the source's dataset, its data slot fed a model: both wrong.
    const problems = problemsOf({
      entries: {
        src: { stage: 'source' },
        fit: { stage: 'train', inputs: { data: 'src' } },
        g: { stage: 'graft', inputs: { model: 'src', data: 'fit' } },
      },
    });
    expect(problems.map((p) => p.path).sort()).toEqual(['entries.g.inputs.data', 'entries.g.inputs.model']);
    expect(problems.find((p) => p.path === 'entries.g.inputs.model')!.message).toBe(
      'needs a model artifact, but "src" (stage source) produces dataset; feed it an entry whose stage produces model',
    );
    expect(problems.find((p) => p.path === 'entries.g.inputs.data')!.message).toContain('produces model + training-metrics');
    expect(() => resolveConfig({ entries: { src: { stage: 'source' }, g: { stage: 'graft', inputs: { model: 'src', data: 'src' } } } }, registry, 'x.json')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', exitCode: 2 }),
    );
  });

  it('rejects unknown top-level keys and wrong types', () => {
    const problems = problemsOf({ entries: {}, backend: 'gpu', extra: true });
    expect(problems).toHaveLength(2);
    expect(problems.find((p) => p.path === 'backend')!.message).toMatch(/auto/);
    expect(problems.find((p) => p.path === '')!.message).toContain('"extra"');
  });

  it('reports cycles by their members', () => {
    const problems = problemsOf({
      entries: {
        src: { stage: 'source' },
        a: { stage: 'graft', inputs: { model: 'b', data: 'src' } },
        b: { stage: 'graft', inputs: { model: 'a', data: 'src' } },
        downstream: { stage: 'graft', inputs: { model: 'a', data: 'src' } },
      },
    });
    expect(problems.map((p) => p.path).sort()).toEqual(['entries.a.inputs', 'entries.b.inputs']);
    expect(problems[0]!.message).toContain('cycle');
  });

  it('rejects an entry feeding itself and bad entry names', () => {
    const problems = problemsOf({ entries: { src: { stage: 'source' }, Loop: { stage: 'train', inputs: { data: 'Loop' } } } });
    expect(problems.some((p) => p.path === 'entries.Loop' && p.message.includes('lower-case'))).toBe(true);
    expect(problems.some((p) => p.path === 'entries.Loop.inputs.data' && p.message.includes('own output'))).toBe(true);
  });

  it('applies typed --set overrides and validates them', () => {
    const config = resolveConfig(valid, registry, 'x.json', { set: ['fit.epochs=5', 'fit.mode=b'] });
    expect(config.entries.find((e) => e.name === 'fit')!.params).toMatchObject({ epochs: 5, mode: 'b' });
    const problems = problemsOf(valid, { set: ['fit.epochs=-2', 'nope.x=1', 'garbage'] });
    expect(problems.map((p) => p.path)).toEqual(expect.arrayContaining(['--set fit.epochs=-2', '--set nope.x=1', '--set garbage']));
  });

  it('names the --set flag, not a config path, for a bad value or unknown param it supplied; the file\'s own mistakes keep their paths', () => {
    const raw = { ...valid, entries: { ...valid.entries, fit: { ...valid.entries.fit, params: { epochs: 3, mode: 'c' } } } };
    const problems = problemsOf(raw, { set: ['fit.epochs=abc', 'fit.epochz=3'] });
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: '--set fit.epochs=abc', message: expect.stringMatching(/expected number/) },
        { path: '--set fit.epochz=3', message: expect.stringContaining('stage train has no param "epochz"') },
        { path: 'entries.fit.params.mode', message: expect.stringMatching(/"a"\|"b"/) },
      ]),
    );
    expect(problems.some((p) => p.path.includes('epochs') && p.path.startsWith('entries.'))).toBe(false);
  });

  it('does not mutate the config object it was given', () => {
    const raw = structuredClone(valid);
    resolveConfig(raw, registry, 'x.json', { set: ['fit.epochs=9'] });
    expect(raw).toEqual(valid);
  });

  it('sets the seed of every entry that has one: --seed beats entry params beats config seed', () => {
    const raw = { ...valid, seed: 4, entries: { ...valid.entries, g: { ...valid.entries.g, params: { seed: 7 } } } };
    const fromConfig = resolveConfig(raw, registry, 'x.json');
    expect(fromConfig.entries.map((e) => e.params.seed)).toEqual([undefined, 4, 7]);
    const fromCli = resolveConfig(raw, registry, 'x.json', { seed: 11 });
    expect(fromCli.entries.map((e) => e.params.seed)).toEqual([undefined, 11, 11]);
    expect(fromCli.seed).toBe(11);
    expect(problemsOf(raw, { seed: -1, backend: 'gpu' }).map((p) => p.path).sort()).toEqual(['--backend', '--seed']);
  });
});

describe('names JavaScript objects carry are config errors, never lookups (issue #9 cases 8, 9)', () => {
  const INTERNALS = ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf'];
  // JSON.parse, as a config file arrives: an own "__proto__" key, not a prototype.
  const parsed = (json: string) => JSON.parse(json) as unknown;

  it('rejects an input that names one, instead of finding an inherited property', () => {
    for (const name of INTERNALS) {
      const problems = problemsOf(parsed(`{"entries":{"src":{"stage":"source"},"fit":{"stage":"train","inputs":{"data":"${name}"}}}}`));
      expect(problems, name).toContainEqual(expect.objectContaining({ path: 'entries.fit.inputs.data', message: expect.stringContaining(`"${name}"`) }));
    }
  });

  it('rejects an entry named like one, and a "__proto__" key anywhere, instead of dropping it', () => {
    for (const name of INTERNALS) {
      const problems = problemsOf(parsed(`{"entries":{"src":{"stage":"source"},"${name}":{"stage":"train","inputs":{"data":"src"}}}}`));
      expect(problems.map((p) => p.path), name).toContain(`entries.${name}`);
    }
    const problems = problemsOf(parsed('{"entries":{"src":{"stage":"source","params":{"__proto__":{"rows":3}},"inputs":{"__proto__":"x"}}}}'));
    expect(problems.map((p) => p.path).sort()).toEqual(['entries.src.inputs.__proto__', 'entries.src.params.__proto__']);
    expect(problems[0]!.message).toContain('"__proto__" is not a valid key');
  });

  it('documents the entry-name pattern and applies it', () => {
    for (const good of ['ingest', 'phase-two', 'full-finetune', 'run2', 'a-1-b']) expect(checkEntryName(good), good).toBeUndefined();
    for (const bad of ['all', 'constructor', 'Phase', 'two--dashes', '-lead', 'trail-', '9lives', 'x'.repeat(65), '', 'a.b', 'a_b']) {
      expect(checkEntryName(bad), bad).toContain('lower-case words');
    }
  });

  it('makes every --set path that names nothing an error naming the flag, and never writes through a prototype', () => {
    const cases: Array<[string, string]> = [
      ['toString.epochs=3', 'no entry named "toString"'],
      ['__proto__.epochs=3', 'no entry named "__proto__"'],
      ['constructor.epochs=3', 'no entry named "constructor"'],
      ['fit.toString=1', 'stage train has no param "toString"; its params: epochs, seed, mode'],
      ['fit.__proto__=1', 'stage train has no param "__proto__"'],
      ['fit.epochs.x=1', 'fit.epochs is a number, not an object, so "epochs.x" names nothing; set the whole value'],
      ['fit.mode.x.y=1', 'fit.mode is one of a set of strings, not an object'],
      ['fit.epocs=1', 'stage train has no param "epocs"'],
      ['fit..epochs=1', 'stage train has no param ""'],
      ['n.opt.__proto__.x=1', 'n.opt has no field "__proto__"; fields: lr, sched'],
      ['n.opt.sched.hourly=1', 'n.opt.sched has no field "hourly"; fields: every'],
    ];
    const raw = { entries: { ...valid.entries, n: { stage: 'nested' } } };
    for (const [assignment, message] of cases) {
      const problems = problemsOf(raw, { set: [assignment] });
      expect(problems, assignment).toEqual([{ path: `--set ${assignment}`, message: expect.stringContaining(message) }]);
    }
    expect(({} as Record<string, unknown>).epochs).toBeUndefined();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    // Paths into object params still work, and keep the sibling defaults.
    const config = resolveConfig(raw, registry, 'x.json', { set: ['n.opt.sched.every=5', 'n.opt.lr=0.5'] });
    expect(config.entries.find((e) => e.name === 'n')!.params).toEqual({ opt: { lr: 0.5, sched: { every: 5 } } });
  });

  it('bounds seeds at 2^32 - 1, the largest Rng tells apart', () => {
    expect(MAX_SEED).toBe(2 ** 32 - 1);
    expect(resolveConfig({ ...valid, seed: MAX_SEED }, registry, 'x.json').seed).toBe(MAX_SEED);
    expect(problemsOf({ ...valid, seed: MAX_SEED + 1 }).map((p) => p.path)).toEqual(['seed']);
    expect(problemsOf(valid, { seed: MAX_SEED + 1 })).toEqual([{ path: '--seed', message: expect.stringContaining('from 0 to 4294967295') }]);
  });

  it('reports absurd nesting as a problem, not a stack overflow', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const problems = problemsOf({ entries: { src: { stage: 'source', params: { rows: deep } } } });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toContain('nested more than 32 levels deep');
  });
});

describe('readConfigFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'graft-config-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function refusal(path: string): Promise<UsageError> {
    const error = await readConfigFile(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).not.toContain('\n');
    return error as UsageError;
  }

  it('reads a config file', async () => {
    await writeFile(join(dir, 'ok.json'), JSON.stringify(valid));
    expect(await readConfigFile(join(dir, 'ok.json'))).toEqual(valid);
  });

  it('refuses devices, directories, named pipes and oversized files in one line, without reading them', async () => {
    expect((await refusal('/dev/zero')).message).toBe(
      'Cannot read pipeline config: /dev/zero is a character device, not a regular file. Pass a pipeline config file (JSON) with --config.',
    );
    expect((await refusal(dir)).message).toContain(`${dir} is a directory, not a regular file`);
    // Opening a FIFO for reading blocks until a writer comes, unless opened non-blocking.
    execFileSync('mkfifo', [join(dir, 'pipe.json')]);
    expect((await refusal(join(dir, 'pipe.json'))).message).toContain('is a named pipe, not a regular file');
    await writeFile(join(dir, 'huge.json'), Buffer.alloc(MAX_CONFIG_BYTES + 1, 0x20));
    expect((await refusal(join(dir, 'huge.json'))).message).toContain('larger than 1 MiB, too large for a pipeline config');
    expect((await refusal(join(dir, 'missing.json'))).code).toBe('CONFIG_UNREADABLE');
    await writeFile(join(dir, 'bad.json'), Uint8Array.of(0x7b, 0xff, 0x7d));
    expect((await refusal(join(dir, 'bad.json'))).code).toBe('CONFIG_NOT_JSON');
  });
});

describe('entriesFor', () => {
  const config = resolveConfig(valid, registry, 'x.json');
  it('takes a target and its ancestors only', () => {
    expect(entriesFor(config, 'fit').map((e) => e.name)).toEqual(['src', 'fit']);
    expect(entriesFor(config, 'all').map((e) => e.name)).toEqual(['src', 'fit', 'g']);
  });
  it('rejects an unknown target with the choices', () => {
    expect(() => entriesFor(config, 'nope')).toThrow(/use "all" or one of: src, fit, g/);
  });
});

describe('pipelineJsonSchema', () => {
  it('spells out each stage\'s params so editors can complete them', () => {
    const schema = JSON.stringify(pipelineJsonSchema(registry));
    expect(schema).toContain('"epochs"');
    expect(schema).toContain('"const":"train"');
    expect(schema).toContain('"additionalProperties":false');
  });
});

describe('the sweep section', () => {
  it('resolves to grid axes (a field of an object param too) and seeds; a config without one resolves exactly as before', () => {
    const plain = resolveConfig(valid, registry, 'test.json');
    expect('sweep' in plain).toBe(false);
    const config = resolveConfig({ ...valid, entries: { ...valid.entries, n: { stage: 'nested' } }, sweep: { grid: { 'fit.epochs': [1, 2], 'n.opt.sched.every': [3] }, seeds: [4, 5] } }, registry, 'test.json');
    expect(config.sweep).toEqual({
      grid: [
        { key: 'fit.epochs', entry: 'fit', path: ['epochs'], values: [1, 2] },
        { key: 'n.opt.sched.every', entry: 'n', path: ['opt', 'sched', 'every'], values: [3] },
      ],
      seeds: [4, 5],
    });
    // The sweep changes no entry: each run applies its own point.
    expect(config.entries).toEqual([...plain.entries, expect.objectContaining({ name: 'n' })].sort((a, b) => (a.name === 'n' ? 1 : b.name === 'n' ? -1 : 0)));
  });

  it('lets --grid replace a config axis of the same key and add new ones, naming the flag for its problems', () => {
    const config = resolveConfig({ ...valid, sweep: { grid: { 'fit.epochs': [1, 2] } } }, registry, 'test.json', {
      grid: [{ source: '--grid fit.epochs=[5]', key: 'fit.epochs', values: [5] }, { source: "--grid fit.mode=['a']", key: 'fit.mode', values: ['a', 'b'] }],
    });
    expect(config.sweep!.grid.map((a) => [a.key, a.values])).toEqual([
      ['fit.epochs', [5]],
      ['fit.mode', ['a', 'b']],
    ]);
    expect(problemsOf(valid, { grid: [{ source: '--grid fit.mode=[c]', key: 'fit.mode', values: ['c'] }] })).toEqual([
      { path: '--grid fit.mode=[c] (value 1)', message: expect.stringMatching(/^"c" is not a valid fit\.mode: /) },
    ]);
    expect(problemsOf(valid, { grid: [{ source: '--grid fit.epochs.x=[1]', key: 'fit.epochs.x', values: [1] }] })).toEqual([
      { path: '--grid fit.epochs.x=[1]', message: expect.stringContaining('fit.epochs is a number, not an object, so "epochs.x" names nothing; vary the whole value, e.g. --grid fit.epochs=[<JSON values>]') },
    ]);
  });

  it('refuses a sweep of more runs than MAX_SWEEP_RUNS before planning any', () => {
    const values = Array.from({ length: 200 }, (_, i) => i + 1);
    expect(problemsOf({ ...valid, sweep: { grid: { 'fit.epochs': values, 'src.rows': values } } })).toEqual([{ path: 'sweep', message: expect.stringContaining('40000 runs') }]);
  });
});
