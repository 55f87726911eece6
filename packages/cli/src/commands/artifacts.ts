import type { ArtifactStore, StoreAnomaly, StoreMode } from '@graft/artifacts';
import { GraftError, UsageError } from '@graft/core';
import type { Argv } from 'yargs';
import { storeRoot, type GlobalOptions } from '../options.ts';
import { registerRemoteSubcommands } from './remote.ts';
import { CLI_ERROR_CODES } from '../error-codes.ts';

/**
 * The store, checked to be a graft store before the command reads (or writes) anything.
 * The store (and zod with it) loads only when a subcommand runs, not for --help.
 */
async function openStore(argv: { artifacts: string | undefined }, mode: StoreMode): Promise<ArtifactStore> {
  const { ArtifactStore } = await import('@graft/artifacts');
  const store = new ArtifactStore(await storeRoot(argv));
  const before = await store.prepare(mode);
  if (before.kind === 'legacy' && mode === 'write') process.stderr.write(`graft: marked ${store.root} as a graft artifact store (it was made by an older graft)\n`);
  return store;
}

function printAnomalies(anomalies: StoreAnomaly[], verb: string): void {
  for (const a of anomalies) process.stderr.write(`graft: ${verb} ${a.path}: ${a.reason}\n`);
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
          const store = await openStore(argv, 'read');
          const manifests = await store.list();
          printAnomalies(await store.anomalies(), 'skipped');
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
          const store = await openStore(argv, 'read');
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
          const store = await openStore(argv, 'read');
          const reports = await store.verify(argv.key);
          if (argv.key && reports.length === 0) throw new UsageError(CLI_ERROR_CODES.artifactNotFound, `No artifact key starts with "${argv.key}".`);
          const bad = reports.filter((r) => !r.ok);
          for (const r of reports) {
            process.stdout.write(`${r.ok ? 'ok     ' : 'CORRUPT'} ${r.stage}/${r.key.slice(0, 12)}${r.ok ? '' : `\n${r.problems.map((p) => `          ${p}`).join('\n')}`}\n`);
          }
          // Foreign files are only listed (graft leaves them alone); a link where graft keeps its own
          // directories is damage that stops `graft run`, so it fails verify too.
          const foreign = argv.key ? [] : (await store.anomalies()).filter((a) => !reports.some((r) => r.path === a.path));
          for (const a of foreign) process.stdout.write(`${a.link ? 'LINK   ' : 'FOREIGN'} ${a.path}: ${a.reason}\n`);
          const links = foreign.filter((a) => a.link);
          process.stdout.write(`${reports.length} artifacts checked, ${bad.length} corrupt${foreign.length > 0 ? `, ${foreign.length} ${foreign.length === 1 ? 'entry' : 'entries'} not made by graft (left alone)` : ''}\n`);
          if (bad.length > 0) {
            throw new GraftError(CLI_ERROR_CODES.artifactCorrupt, `${bad.length} corrupt artifact(s). The next \`graft run\` rebuilds them (or remove them with \`graft artifacts gc\` after deleting the runs that use them).`);
          }
          if (links.length > 0) {
            throw new UsageError(CLI_ERROR_CODES.storeLink, `${links.length} symbolic link(s) in ${store.root} where graft keeps its own directories (listed above); graft never follows them. Remove the links (their targets are not touched).`);
          }
        },
      )
      .command(
        'gc',
        'Remove artifacts no run references, and leftover temp dirs',
        (a) => a.option('dry-run', { type: 'boolean', default: false, describe: 'Only list what would be removed' }),
        async (argv) => {
          const store = await openStore(argv, argv.dryRun ? 'read' : 'write');
          const { listRuns } = await import('@graft/runs');
          const runs = await listRuns(store.root);
          if (runs.warnings.length > 0) {
            // What an unreadable record references is unknown: collecting anything could delete its artifacts.
            throw new UsageError(
              CLI_ERROR_CODES.runsUnreadable,
              `gc stopped before removing anything: ${runs.warnings.length} run record(s) cannot be read, so the artifacts they use are unknown:\n` +
                runs.warnings.map((w) => `  ${w.message}`).join('\n') +
                '\nRepair or delete those run directories (deleting one lets gc collect what only it used), then run gc again.',
            );
          }
          const keep = new Set(runs.flatMap((run) => Object.values(run.stages).map((s) => s.key)));
          const { removed, freedBytes, kept } = await store.gc({ keep, dryRun: argv.dryRun });
          for (const path of removed) process.stdout.write(`${argv.dryRun ? 'would remove' : 'removed'} ${path}\n`);
          for (const k of kept) process.stdout.write(`kept ${k.path}: ${k.reason}\n`);
          process.stdout.write(`${argv.dryRun ? 'Would free' : 'Freed'} ${formatBytes(freedBytes)} (${removed.length} entries; ${keep.size} artifacts referenced by ${runs.length} runs kept)\n`);
        },
      )
      .command(
        'init',
        'Make the --artifacts directory a graft store (writes .graft-store.json); needed for a non-empty directory graft does not recognise',
        (a) => a,
        async (argv) => {
          const { ArtifactStore } = await import('@graft/artifacts');
          const store = new ArtifactStore(await storeRoot(argv));
          const before = await store.init();
          const said =
            before.kind === 'marked'
              ? 'is already a graft artifact store'
              : before.kind === 'foreign'
                ? `is now a graft artifact store; entries graft did not make stay untouched and are reported by verify and gc (${before.foreign.join(', ')})`
                : 'is now a graft artifact store';
          process.stdout.write(`${store.root} ${said}\n`);
        },
      )
      .demandCommand(1, 'Name an artifacts subcommand: ls, show, verify, gc, init, push or pull.'),
  );
}
