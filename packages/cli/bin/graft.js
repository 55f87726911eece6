#!/usr/bin/env node
// graft runs its TypeScript sources directly through tsx's loader: no build step to go stale.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
