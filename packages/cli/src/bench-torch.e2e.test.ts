import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { graft } from './test-support.ts';

describe('graft bench --against-torch, bad set-ups (no torch needed)', () => {
  it('exits 2 with the apt-get line when the interpreter cannot import torch', async () => {
    // /bin/false starts and fails, as a python3 without torch does. The reference script is
    // given explicitly so the test does not depend on ../shared being beside the checkout.
    const dir = await mkdtemp(join(tmpdir(), 'graft-bench-torch-'));
    const reference = join(dir, 'seed_reference.py');
    await writeFile(reference, '# never run: the interpreter check comes first\n');
    const result = await graft(['bench', '--against-torch', '--python', '/bin/false', '--reference', reference], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('apt-get install python3-torch python3-numpy libopenblas0-pthread');
    expect(result.stdout).toBe('');
  });

  it('exits 2 naming the reference script when it does not exist, and when asked for two backends', async () => {
    const missing = await graft(['bench', '--against-torch', '--reference', '/nonexistent/seed_reference.py'], tmpdir());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('/nonexistent/seed_reference.py does not exist; pass --reference');
    const two = await graft(['bench', '--against-torch', '--backend', 'wasm,cpu'], tmpdir());
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('--against-torch measures one backend');
  });
});
