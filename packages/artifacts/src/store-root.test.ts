import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveStoreRoot } from './store-root.ts';

describe('resolveStoreRoot', () => {
  it('prefers --artifacts, then GRAFT_ARTIFACTS, then ./artifacts, always absolute', () => {
    expect(resolveStoreRoot('/x/cli', { GRAFT_ARTIFACTS: '/x/env' })).toBe('/x/cli');
    expect(resolveStoreRoot(undefined, { GRAFT_ARTIFACTS: '/x/env' })).toBe('/x/env');
    expect(resolveStoreRoot(undefined, {})).toBe(join(process.cwd(), 'artifacts'));
    expect(resolveStoreRoot('rel/store', {})).toBe(resolve('rel/store'));
    expect(resolveStoreRoot(undefined, { GRAFT_ARTIFACTS: 'envrel' })).toBe(resolve('envrel'));
  });

  it('treats empty values as unset', () => {
    expect(resolveStoreRoot('', { GRAFT_ARTIFACTS: '/x/env' })).toBe('/x/env');
    expect(resolveStoreRoot('  ', { GRAFT_ARTIFACTS: '' })).toBe(join(process.cwd(), 'artifacts'));
  });
});
