import { defineConfig } from 'vitest/config';

/**
 * Two test tiers, chosen by file name (README "Tests"):
 *
 * - `unit`: `*.test.ts` — in-process, a few seconds per file at most. The inner loop:
 *   `npx vitest --project unit`.
 * - `e2e`: `*.e2e.test.ts` — anything that starts or kills processes (the graft binary,
 *   nx, child scripts, kill -9) or trains on real MNIST.
 *
 * `npm test` runs both. A new test file picks its tier by its name; nothing else to edit.
 */
const E2E = '**/*.e2e.test.ts';
const SOURCES = ['packages/*/src/**', 'packages/*/*/src/**', 'tools/**'];

export default defineConfig({
  test: {
    // Training tests are CPU-bound; two workers match this 2-core machine.
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: SOURCES.map((dir) => `${dir}/*.test.ts`),
          exclude: [E2E, '**/node_modules/**'],
          // A unit test takes seconds; this bound leaves room for a machine shared with other
          // jobs (2 cores, load 10+). A test that needs more belongs in the e2e tier.
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Curve evaluations stay on the training thread here: each evaluation worker starts
          // its own tsx + tfjs-wasm (~2-4 s from sources), which made the training-loop files
          // 5x slower. The worker path is proven equal to this one in
          // packages/train/src/curve-evaluation.e2e.test.ts (it asks for each mode explicitly).
          env: { GRAFT_EVALUATION: 'inline' },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: SOURCES.map((dir) => `${dir}/*.e2e.test.ts`),
          exclude: ['**/node_modules/**'],
          // Tests here run the bundled graft binary: build it once, before any of them.
          globalSetup: ['tools/vitest/build-cli.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
