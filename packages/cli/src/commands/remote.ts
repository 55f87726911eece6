import type { ArtifactStore } from '@graft/artifacts';
import { GraftError, UsageError } from '@graft/core';
import type { SharedArtifacts } from '@graft/pipeline';
// Types only: @graft/remote (and the AWS SDK behind it) is imported when a command uses a remote.
import type { ArtifactRemote, TransferReport } from '@graft/remote';
import type { Argv } from 'yargs';
import { lastValue, storeRoot, type GlobalOptions } from '../options.ts';
import { CLI_ERROR_CODES } from '../error-codes.ts';

export interface RemoteArgs {
  remote: string | undefined;
  endpoint: string | undefined;
  pathStyle: boolean | undefined;
}

/** --remote, --endpoint, --path-style: shared by `graft artifacts push|pull` and `graft run`. */
export function addRemoteOptions<T>(y: Argv<T>) {
  return y
    .option('remote', { type: 'string', coerce: lastValue<string>, describe: 'Artifact remote s3://BUCKET[/PREFIX] (default: $GRAFT_REMOTE)' })
    .option('endpoint', { type: 'string', coerce: lastValue<string>, describe: 'S3-compatible endpoint URL, e.g. http://127.0.0.1:9000 for MinIO (default: $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL, else AWS)' })
    .option('path-style', { type: 'boolean', describe: 'Path-style bucket addressing (default: on with --endpoint, as MinIO and Ceph need)' });
}

/** The remote the arguments name (or $GRAFT_REMOTE), undefined if none. Loads the S3 client only here. */
export async function openRemoteFrom(argv: RemoteArgs): Promise<ArtifactRemote | undefined> {
  const url = argv.remote ?? (process.env.GRAFT_REMOTE || undefined);
  if (url === undefined) return undefined;
  const { openRemote } = await import('@graft/remote');
  return openRemote({ url, ...(argv.endpoint === undefined ? {} : { endpoint: argv.endpoint }), ...(argv.pathStyle === undefined ? {} : { pathStyle: argv.pathStyle }) });
}

/** The runner's view of a remote, bound to one local store. */
export function sharedArtifacts(remote: ArtifactRemote, store: ArtifactStore): SharedArtifacts {
  return {
    url: remote.url,
    pull: async (stage, key) => (await remote.pullArtifact(store, stage, key))?.artifact,
    push: async (stage, key, options) => (await remote.pushArtifact(store, stage, key, options)).outcome,
  };
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
}

type Direction = 'push' | 'pull';

/** `graft artifacts push|pull [selector..]`, added to the `artifacts` command group. */
export function registerRemoteSubcommands<T extends GlobalOptions>(y: Argv<T>): Argv<T> {
  for (const direction of ['push', 'pull'] as const) {
    y.command(
      `${direction} [selectors..]`,
      direction === 'push'
        ? 'Upload artifacts to a remote (default: every artifact in the store); already uploaded ones are skipped'
        : 'Download artifacts from a remote into the store, verifying every sha256 (default: every artifact on the remote)',
      (a) =>
        addRemoteOptions(a)
          .positional('selectors', { type: 'string', array: true, describe: 'Key prefixes or stage/keyprefix, as `graft artifacts ls` prints them' })
          .option('json', { type: 'boolean', default: false, describe: 'Print the result as one JSON object on the last line of stdout' })
          .option('overwrite', { type: 'boolean', default: false, hidden: direction === 'pull', describe: 'push: upload even what the remote has (repairs a remote copy that fails verification)' })
          .example(`$0 artifacts ${direction} --remote s3://my-bucket/graft`, direction === 'push' ? 'Upload the whole store' : 'Download everything on the remote')
          .example(`$0 artifacts ${direction} split/3fa1 --remote s3://my-bucket/graft --endpoint http://127.0.0.1:9000`, 'One artifact, on MinIO'),
      async (argv) => transfer(direction, argv),
    );
  }
  return y;
}

async function transfer(direction: Direction, argv: GlobalOptions & RemoteArgs & { selectors?: string[]; json: boolean; overwrite: boolean }): Promise<void> {
  if (direction === 'pull' && argv.overwrite) throw new UsageError(CLI_ERROR_CODES.badArguments, '--overwrite applies to push only; pull always verifies and keeps a good local copy.');
  const remote = await openRemoteFrom(argv);
  if (!remote) throw new UsageError(CLI_ERROR_CODES.remoteMissing, `Name the remote: graft artifacts ${direction} --remote s3://BUCKET/PREFIX (or set GRAFT_REMOTE).`);
  const { ArtifactStore } = await import('@graft/artifacts');
  const store = new ArtifactStore(await storeRoot(argv));
  const selectors = (argv.selectors ?? []).filter((s) => s.trim() !== '');
  const print = (report: TransferReport): void => {
    if (argv.json) return;
    const name = `${report.stage}/${report.key.slice(0, 12)}`;
    const what = report.outcome === 'failed' ? `FAILED     ${name}\n           ${report.error!.message}` : `${report.outcome.padEnd(10)} ${name}${report.bytes > 0 ? `  ${formatBytes(report.bytes)}` : ''}`;
    process.stdout.write(`${what}\n`);
  };
  let reports: TransferReport[];
  try {
    reports = direction === 'push' ? await remote.push(store, { selectors, onReport: print, overwrite: argv.overwrite }) : await remote.pull(store, { selectors, onReport: print });
  } finally {
    remote.close();
  }
  if (selectors.length > 0 && reports.length === 0) {
    const where = direction === 'push' ? `in the store at ${store.root}` : `on ${remote.url}`;
    throw new UsageError(CLI_ERROR_CODES.artifactNotFound, `No artifact ${where} matches ${selectors.map((s) => `"${s}"`).join(', ')}. List them with \`graft artifacts ls\`${direction === 'pull' ? ' on the machine that pushed them' : ''}.`);
  }
  const failed = reports.filter((r) => r.outcome === 'failed');
  const moved = reports.filter((r) => r.outcome === 'uploaded' || r.outcome === 'downloaded');
  const bytes = moved.reduce((sum, r) => sum + r.bytes, 0);
  if (argv.json) {
    const artifacts = reports.map((r) => ({ stage: r.stage, key: r.key, outcome: r.outcome, bytes: r.bytes, ...(r.error ? { error: { code: r.error.code, message: r.error.message } } : {}) }));
    process.stdout.write(JSON.stringify({ remote: remote.url, direction, artifacts }) + '\n');
  } else {
    const verb = direction === 'push' ? 'uploaded' : 'downloaded';
    const present = direction === 'push' ? `already on ${remote.url}` : 'already in the store';
    process.stdout.write(`${reports.length} artifacts: ${moved.length} ${verb} (${formatBytes(bytes)}), ${reports.length - moved.length - failed.length} ${present}, ${failed.length} failed\n`);
  }
  if (failed.length > 0) {
    const hint = direction === 'push' ? 'Corrupt local artifacts are never uploaded: `graft run` rebuilds them.' : 'Nothing unverified was published; push a good copy again with `graft artifacts push --overwrite` from a machine that has one.';
    throw new GraftError(CLI_ERROR_CODES.remoteTransferFailed, `${failed.length} artifact(s) could not be ${direction === 'push' ? 'pushed' : 'pulled'} (listed above). ${hint}`);
  }
}
