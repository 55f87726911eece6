import type { ArtifactStore } from '@graft/artifacts';
import { GraftError, UsageError } from '@graft/core';
import type { Argv } from 'yargs';
import { storeRoot, type GlobalOptions } from '../options.ts';
import { registerRemoteSubcommands } from './remote.ts';
import { CLI_ERROR_CODES } from '../error-codes.ts';

// The store (and zod with it) loads only when a subcommand runs, not for --help.
async function openStore(argv: { artifacts: string | undefined }): Promise<ArtifactStore> {
  const { ArtifactStore } = await import('@graft/artifacts');
  return new ArtifactStore(await storeRoot(argv));
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
}

/** `graft artifacts ls|show|verify|gc|push|pull`. */
export function registerArtifactCommands(cli: Argv<GlobalOptions>): void {
  cli.command('artifacts', 'Inspect, verify, clean and share (push/pull) the artifact store', (y) =>
    registerRemoteSubcommands(y)
      .command(
        'ls',
        'List published artifacts',
        (a) => a.option('json', { type: 'boolean', default: false }),
        async (argv) => {
          const manifests = await (await openStore(argv)).list();
          if (argv.json) {
            process.stdout.write(JSON.stringify(manifests.map((m) => ({ stage: m.stage, key: m.key, createdAt: m.createdAt, bytes: m.files.reduce((s, f) => s + f.bytes, 0) }))) + '\n');
            return;
          }
          if (manifests.length === 0) {
            process.stdout.write('The store is empty. Run `graft run all` to fill it.\n');
            return;
          }
          for (const m of manifests) {
            const bytes = m.files.reduce((sum, f) => sum + f.bytes, 0);
            process.stdout.write(`${m.stage.padEnd(12)} ${m.key.slice(0, 12)}  ${m.createdAt}  ${formatBytes(bytes).padStart(9)}  ${m.files.length} files\n`);
          }
        },
      )
      .command(
        'show <key>',
        'Show one artifact\'s manifest (by key prefix)',
        (a) => a.positional('key', { type: 'string', demandOption: true }),
        async (argv) => {
          const store = await openStore(argv);
          const matches = await store.resolvePrefix(argv.key);
          if (matches.length === 0) throw new UsageError(CLI_ERROR_CODES.artifactNotFound, `No artifact key starts with "${argv.key}". List them with \`graft artifacts ls\`.`);
          if (matches.length > 1) {
            throw new UsageError(CLI_ERROR_CODES.artifactAmbiguous, `"${argv.key}" matches ${matches.length} artifacts (${matches.map((m) => `${m.stage}/${m.key.slice(0, 12)}`).join(', ')}); give more characters.`);
          }
          const artifact = await store.open(matches[0]!.stage, matches[0]!.key);
          process.stdout.write(JSON.stringify({ path: artifact!.path, ...artifact!.manifest }, null, 2) + '\n');
        },
      )
      .command(
        'verify [key]',
        'Check every file against its manifest sha256 (non-zero exit on any mismatch)',
        (a) => a.positional('key', { type: 'string', describe: 'Key prefix; default: every artifact' }),
        async (argv) => {
          const reports = await (await openStore(argv)).verify(argv.key);
          if (argv.key && reports.length === 0) throw new UsageError(CLI_ERROR_CODES.artifactNotFound, `No artifact key starts with "${argv.key}".`);
          const bad = reports.filter((r) => !r.ok);
          for (const r of reports) {
            process.stdout.write(`${r.ok ? 'ok     ' : 'CORRUPT'} ${r.stage}/${r.key.slice(0, 12)}${r.ok ? '' : `\n${r.problems.map((p) => `          ${p}`).join('\n')}`}\n`);
          }
          process.stdout.write(`${reports.length} artifacts checked, ${bad.length} corrupt\n`);
          if (bad.length > 0) {
            throw new GraftError(CLI_ERROR_CODES.artifactCorrupt, `${bad.length} corrupt artifact(s). The next \`graft run\` rebuilds them (or remove them with \`graft artifacts gc\` after deleting the runs that use them).`);
          }
        },
      )
      .command(
        'gc',
        'Remove artifacts no run references, and leftover temp dirs',
        (a) => a.option('dry-run', { type: 'boolean', default: false, describe: 'Only list what would be removed' }),
        async (argv) => {
          const store = await openStore(argv);
          const { listRuns } = await import('@graft/runs');
          const runs = await listRuns(store.root);
          const keep = new Set(runs.flatMap((run) => Object.values(run.stages).map((s) => s.key)));
          const { removed, freedBytes } = await store.gc({ keep, dryRun: argv.dryRun });
          for (const path of removed) process.stdout.write(`${argv.dryRun ? 'would remove' : 'removed'} ${path}\n`);
          process.stdout.write(`${argv.dryRun ? 'Would free' : 'Freed'} ${formatBytes(freedBytes)} (${removed.length} entries; ${keep.size} artifacts referenced by ${runs.length} runs kept)\n`);
        },
      )
      .demandCommand(1, 'Name an artifacts subcommand: ls, show, verify, gc, push or pull.'),
  );
}
