import { defineStage, type StageDefinition } from '@graft/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, entriesFor, pipelineJsonSchema, resolveConfig, type StageRegistry } from './config.ts';

const noop = async () => ({ metrics: {} });
const registry: StageRegistry = new Map<string, StageDefinition>(
  [
    defineStage({ name: 'source', version: '1', description: 'makes data', inputs: [], params: z.strictObject({ rows: z.number().int().min(1).default(10) }), run: noop }),
    defineStage({ name: 'train', version: '1', description: 'trains', inputs: ['data'], params: z.strictObject({ epochs: z.number().int().min(1).default(2), seed: z.number().int().min(0).default(0), mode: z.enum(['a', 'b']).default('a') }), run: noop }),
    defineStage({ name: 'graft', version: '1', description: 'two inputs', inputs: ['model', 'data'], params: z.strictObject({ seed: z.number().int().default(0) }), run: noop }),
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
    expect(problems.find((p) => p.path === 'entries.odd.stage')!.message).toContain('known stages: source, train, graft');
    expect(problems.find((p) => p.path === 'entries.fit.inputs.data')!.message).toContain('"nowhere"');
    expect(problems.find((p) => p.path === 'entries.g.inputs')!.message).toContain('missing input "data"');
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
        downstream: { stage: 'train', inputs: { data: 'a' } },
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
        { path: '--set fit.epochz=3', message: 'unknown key "epochz"' },
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
