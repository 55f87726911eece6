/**
 * The layering rule (eslint.config.js) on code it must refuse and code it must accept,
 * linted as if it were a file of the named package.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const eslint = new ESLint({ cwd: root });

async function problems(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(root, file) });
  return result!.messages.map((m) => m.message);
}

describe('eslint.config.js layering', () => {
  it('refuses a stage importing another stage, statically or dynamically', async () => {
    expect(await problems('packages/phase-two/src/x.ts', "import { phaseOneStage } from '@graft/phase-one';\n")).toEqual([
      expect.stringContaining('@graft/phase-two (layer stage) may not import @graft/phase-one (layer stage)'),
    ]);
    expect(await problems('packages/transplant/src/x.ts', "export const m = await import('@graft/split');\n")).toEqual([
      expect.stringContaining('may not import @graft/split (layer stage)'),
    ]);
  });

  it('refuses upward imports and undeclared dependencies', async () => {
    expect(await problems('packages/core/src/x.ts', "import { ArtifactStore } from '@graft/artifacts';\n")).toEqual([
      expect.stringContaining('base imports only no graft package'),
    ]);
    expect(await problems('packages/wasm-kernels/src/x.ts', "import { Rng } from '@graft/core';\n")).toHaveLength(1);
    expect(await problems('packages/pipeline/src/x.ts', "import { phaseOneStage } from '@graft/phase-one';\n")).toHaveLength(1);
    // data is a library like train, but data does not declare train: refused.
    expect(await problems('packages/data/src/x.ts', "import { trainLoop } from '@graft/train';\n")).toEqual([
      expect.stringContaining("@graft/train is not in @graft/data's package.json dependencies"),
    ]);
    // Test fixtures only from tests.
    expect(await problems('packages/phase-one/src/x.ts', "import { stageContext } from '@graft/testing';\n")).toHaveLength(1);
  });

  it('accepts the layering as declared', async () => {
    expect(await problems('packages/phase-one/src/x.ts', "import { readSplitInfo } from '@graft/data';\nimport type { TrainResult } from '@graft/train';\n")).toEqual([]);
    expect(await problems('packages/phase-one/src/x.test.ts', "import { stageContext } from '@graft/testing';\n")).toEqual([]);
    expect(await problems('packages/cli/src/x.ts', "import { phaseOneStage } from '@graft/phase-one';\n")).toEqual([]);
  });
});
