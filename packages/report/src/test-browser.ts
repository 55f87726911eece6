/**
 * Test-only: Debian's chromium driven by playwright-core (no browser download: the
 * system binary, `apt-get install chromium`). Every page records console errors, page
 * errors, failed requests and HTTP errors, so a test can demand none happened.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const chromiumMissing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is absent (apt-get install -y chromium); browser tests skipped`;

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** Git-ignored: screenshots a person can look at after the tests ran. */
export const SCREENSHOT_DIR = join(REPO, 'screenshots');
export const GRAFT_BIN = join(REPO, 'packages/cli/bin/graft.js');

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface TestBrowser {
  context: BrowserContext;
  /** A new page whose problems land in `problems`. */
  page(): Promise<{ page: Page; problems: string[] }>;
  close(): Promise<void>;
}

export async function openBrowser(): Promise<TestBrowser> {
  const { chromium } = await import('playwright-core');
  // A fresh profile per test file: no state from an earlier run or another helper.
  const profile = await mkdtemp(join(tmpdir(), 'graft-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 } });
  return {
    context,
    async page() {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
      page.on('response', (r) => {
        if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
      });
      return { page, problems };
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

export interface GraftResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the graft binary to completion (black box, as a user would). */
export function graft(args: string[], cwd: string): Promise<GraftResult> {
  return new Promise((done) => {
    execFile(process.execPath, [GRAFT_BIN, ...args], { cwd, env: { ...process.env, GRAFT_ARTIFACTS: '' }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      done({ code: error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1) : 0, stdout, stderr });
    });
  });
}

/** A tiny real store: a 600/200-image slice of MNIST, the whole chain for seeds 1 and 2. */
export async function tinyStore(work: string): Promise<{ store: string; runIds: string[] }> {
  const { writeMnistSlice, writeTinyChain } = await import('@graft/testing');
  await writeTinyChain(join(work, 'tiny.json'), {
    source: await writeMnistSlice(join(work, 'idx')),
    seed: 1,
    phaseOne: { epochs: 2, evalEvery: 1, learningRate: 0.001 },
    phaseTwo: { epochs: 1, batchesPerEpoch: 4, evalEvery: 1, learningRate: 0.001 },
  });
  const store = join(work, 'store');
  const result = await graft(['run', 'all', '--config', 'tiny.json', '--artifacts', store, '--seeds', '1,2', '--json'], work);
  if (result.code !== 0) throw new Error(`graft run failed (${result.code}): ${result.stderr}`);
  const lines = result.stdout.trim().split('\n');
  const { runs } = JSON.parse(lines[lines.length - 1]!) as { runs: { runId: string }[] };
  return { store, runIds: runs.map((r) => r.runId) };
}
