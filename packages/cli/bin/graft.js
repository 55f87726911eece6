#!/usr/bin/env node
// graft runs the bundled CLI (../build.mjs). `npm ci` builds it; when any source changed
// since, this rebuilds first (about a second), so a stale build never runs.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkBuild } from '../build.mjs';

let { dir, stale } = checkBuild();
if (stale !== null) {
  const { build } = await import('../build.mjs');
  process.stderr.write(`graft: building the CLI (${stale})\n`);
  try {
    dir = await build();
  } catch (error) {
    process.stderr.write(`graft: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
const { main } = await import(pathToFileURL(join(dir, 'main.js')).href);
process.exitCode = await main(process.argv.slice(2));
