import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as S3 from '@aws-sdk/client-s3';
import { ArtifactStore, CorruptArtifactError, MANIFEST_FILE, parseManifest } from '@graft/artifacts';
import { GraftError, UsageError, type ArtifactManifest, type InputArtifact } from '@graft/core';
import { REMOTE_ERROR_CODES } from './errors.ts';
import { blobObject, manifestObject, manifestsPrefix, matchesSelector, parseManifestObject } from './layout.ts';
import { parseEndpoint, parseRemoteUrl, type RemoteLocation } from './location.ts';

export interface RemoteOptions {
  /** `s3://bucket[/prefix]`. */
  url: string;
  /** S3-compatible endpoint (MinIO, Ceph, R2, ...). Default: $AWS_ENDPOINT_URL_S3, else $AWS_ENDPOINT_URL, else AWS S3. */
  endpoint?: string;
  /** Default: $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1 (what MinIO and s3rver expect). */
  region?: string;
  /** Path-style addressing (http://host/bucket/key). Default: on when an endpoint is set, as MinIO and Ceph need. */
  pathStyle?: boolean;
  /** Default: the AWS SDK's chain ($AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY, $AWS_PROFILE, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Files uploaded or downloaded at once within one artifact. Default 4. */
  concurrency?: number;
  /** Test seam: runs after an artifact's files are uploaded, right before its manifest (the commit point). */
  beforeCommit?: (stage: string, key: string) => void | Promise<void>;
}

export interface RemoteArtifactName {
  stage: string;
  key: string;
}

export type PushOutcome = 'uploaded' | 'present';
export type PullOutcome = 'downloaded' | 'present';

export interface TransferReport {
  stage: string;
  key: string;
  outcome: PushOutcome | PullOutcome | 'failed';
  /** Bytes sent or received (0 when nothing moved). */
  bytes: number;
  /** Why it failed (outcome 'failed'). */
  error?: GraftError;
}

/** Which artifacts a bulk push or pull covers: key prefixes or `stage/keyprefix`; none = all. */
export interface Selection {
  selectors?: string[];
  /** Called once per artifact as it finishes. */
  onReport?: (report: TransferReport) => void;
}

/**
 * Opens a remote: validates the URL and endpoint (UsageError, exit 2) and loads the AWS
 * SDK, which only commands that talk to a remote need (loading it takes ~0.4 s here).
 */
export async function openRemote(options: RemoteOptions): Promise<ArtifactRemote> {
  const location = parseRemoteUrl(options.url);
  const rawEndpoint = options.endpoint ?? (process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined);
  const endpoint = rawEndpoint === undefined ? undefined : parseEndpoint(rawEndpoint);
  // graft supports Node 20 (package.json engines); the SDK's notice that its 2027 releases
  // will not would otherwise land on stderr, breaking `--json` runs whose stderr is NDJSON.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const sdk = await import('@aws-sdk/client-s3');
  const client = new sdk.S3Client({
    region: options.region ?? (process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1'),
    ...(endpoint === undefined ? {} : { endpoint }),
    forcePathStyle: options.pathStyle ?? endpoint !== undefined,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    // Checksums only where S3 requires them: several S3-compatible servers reject the
    // SDK's newer default trailing checksums. Integrity is graft's own sha256 check on pull.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return new ArtifactRemote(location, endpoint, client, sdk, options);
}

/**
 * An artifact remote on S3-compatible storage (layout in layout.ts). Push uploads a
 * verified local artifact's files, then its manifest; pull downloads a manifest, then
 * exactly the files it lists, and publishes them through the store's verify + atomic
 * rename (ArtifactStore.publishCopy), so a partial or corrupt download is never visible.
 */
export class ArtifactRemote {
  readonly location: RemoteLocation;
  readonly endpoint: string | undefined;
  private readonly client: S3.S3Client;
  private readonly sdk: typeof S3;
  private readonly concurrency: number;
  private readonly beforeCommit: RemoteOptions['beforeCommit'];

  constructor(location: RemoteLocation, endpoint: string | undefined, client: S3.S3Client, sdk: typeof S3, options: RemoteOptions) {
    this.location = location;
    this.endpoint = endpoint;
    this.client = client;
    this.sdk = sdk;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.beforeCommit = options.beforeCommit;
  }

  get url(): string {
    return this.location.url;
  }

  /** Closes the HTTP connections (the process can exit without waiting for keep-alive). */
  close(): void {
    this.client.destroy();
  }

  private label(stage: string, key: string): string {
    return `${stage}/${key.slice(0, 12)}`;
  }

  /** Whether the remote has `stage/key` (its manifest exists). Does not check its files. */
  async has(stage: string, key: string): Promise<boolean> {
    return (await this.head(manifestObject(this.location, stage, key), `look up ${this.label(stage, key)} on ${this.url}`)) !== undefined;
  }

  /** Every artifact on the remote (names graft did not write are skipped, never followed), sorted. */
  async list(): Promise<RemoteArtifactName[]> {
    const found: RemoteArtifactName[] = [];
    let token: string | undefined;
    do {
      const input = { Bucket: this.location.bucket, Prefix: manifestsPrefix(this.location), ...(token ? { ContinuationToken: token } : {}) };
      const page = await this.guard(`list ${this.url}`, () => this.client.send(new this.sdk.ListObjectsV2Command(input)));
      for (const object of page.Contents ?? []) {
        const name = object.Key === undefined ? undefined : parseManifestObject(this.location, object.Key);
        if (name) found.push(name);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return found.sort((a, b) => (a.stage < b.stage ? -1 : a.stage > b.stage ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Makes sure the remote has `stage/key`: 'present' if its manifest is already there,
   * else uploads the local artifact (verified first: a corrupt one is never sent) and
   * returns 'uploaded'. Files already on the remote with the right size are not sent
   * again. `overwrite` uploads every file and the manifest whatever is there, which
   * repairs a remote copy that failed verification.
   */
  async pushArtifact(store: ArtifactStore, stage: string, key: string, options: { overwrite?: boolean } = {}): Promise<{ outcome: PushOutcome; bytes: number }> {
    const label = this.label(stage, key);
    const overwrite = options.overwrite ?? false;
    if (!overwrite && (await this.has(stage, key))) return { outcome: 'present', bytes: 0 };
    const artifact = await store.open(stage, key);
    if (!artifact) throw new UsageError('ARTIFACT_NOT_FOUND', `Cannot push ${label}: the store at ${store.root} has no such artifact.`);
    // The manifest is sent byte for byte (its digest covers its content), read after open() verified it.
    const manifestBytes = await readFile(join(artifact.path, MANIFEST_FILE));
    let bytes = 0;
    await forEachLimited(artifact.manifest.files, this.concurrency, async (file) => {
      const name = blobObject(this.location, file.sha256);
      if (!overwrite) {
        const existing = await this.head(name, `look up ${file.path} of ${label} on ${this.url}`);
        if (existing?.ContentLength === file.bytes) return;
      }
      const path = join(artifact.path, ...file.path.split('/'));
      // Small files as one buffer, large ones streamed with their length (no multipart needed below 5 GB).
      const body = file.bytes < 8 << 20 ? await readFile(path) : createReadStream(path);
      await this.guard(`upload ${file.path} of ${label} to ${this.url}`, () =>
        this.client.send(new this.sdk.PutObjectCommand({ Bucket: this.location.bucket, Key: name, Body: body, ContentLength: file.bytes, ContentType: 'application/octet-stream' })),
      );
      bytes += file.bytes;
    });
    await this.beforeCommit?.(stage, key);
    const commit = { Bucket: this.location.bucket, Key: manifestObject(this.location, stage, key), Body: manifestBytes, ContentLength: manifestBytes.length, ContentType: 'application/json' };
    await this.guard(`upload the manifest of ${label} to ${this.url}`, () => this.client.send(new this.sdk.PutObjectCommand(commit)));
    return { outcome: 'uploaded', bytes: bytes + manifestBytes.length };
  }

  /**
   * Copies `stage/key` from the remote into the store: undefined if the remote has no
   * manifest for it; the local artifact if the store already has it (verified). Every
   * file is checked against the manifest's size and sha256 before the artifact is
   * published atomically; a mismatch throws CorruptArtifactError naming the remote and
   * leaves the store as it was.
   */
  async pullArtifact(store: ArtifactStore, stage: string, key: string): Promise<{ artifact: InputArtifact; outcome: PullOutcome; bytes: number } | undefined> {
    const label = this.label(stage, key);
    const manifestName = manifestObject(this.location, stage, key);
    const origin = `${this.url} (object ${manifestName})`;
    const manifestBytes = await this.getBytes(manifestName, `download the manifest of ${label} from ${this.url}`);
    if (!manifestBytes) return undefined;
    // Validated before anything is downloaded: a manifest naming other paths or another key is refused here.
    const manifest: ArtifactManifest = parseManifest(manifestBytes, { stage, key, path: origin });
    if (manifest.stage !== stage || manifest.key !== key) {
      throw new CorruptArtifactError({ stage, key, path: origin, problems: [`${MANIFEST_FILE}: describes ${manifest.stage}/${manifest.key}, not ${stage}/${key}`] });
    }
    const local = await openOrDiscard(store, stage, key);
    if (local) return { artifact: local, outcome: 'present', bytes: 0 };
    const pending = await store.begin(stage, key);
    try {
      // Another process may have published the key while we waited for its lock.
      const raced = await openOrDiscard(store, stage, key);
      if (raced) {
        await store.abort(pending);
        return { artifact: raced, outcome: 'present', bytes: 0 };
      }
      let bytes = manifestBytes.length;
      await forEachLimited(manifest.files, this.concurrency, async (file) => {
        // file.path passed the manifest schema: relative, no '.', '..' or empty segments.
        const target = join(pending.outDir, ...file.path.split('/'));
        await mkdir(dirname(target), { recursive: true });
        const received = await this.download(blobObject(this.location, file.sha256), target, `download ${file.path} of ${label} from ${this.url}`);
        if (received === undefined) throw new CorruptArtifactError({ stage, key, path: origin, problems: [`${file.path}: missing on the remote (object ${blobObject(this.location, file.sha256)})`] });
        bytes += received;
      });
      const artifact = await store.publishCopy(pending, manifestBytes, origin);
      return { artifact, outcome: 'downloaded', bytes };
    } catch (error) {
      await store.abort(pending).catch(() => undefined);
      throw error;
    }
  }

  /** Pushes every artifact of the store (or those the selectors match). Failures are reported per artifact, not thrown. */
  async push(store: ArtifactStore, selection: Selection & { overwrite?: boolean } = {}): Promise<TransferReport[]> {
    const names = await selectLocal(store, selection.selectors);
    return this.each(names, selection, async ({ stage, key }) => this.pushArtifact(store, stage, key, { overwrite: selection.overwrite ?? false }));
  }

  /** Pulls every artifact on the remote (or those the selectors match). Failures are reported per artifact, not thrown. */
  async pull(store: ArtifactStore, selection: Selection = {}): Promise<TransferReport[]> {
    const selectors = selection.selectors ?? [];
    const names = (await this.list()).filter(({ stage, key }) => selectors.length === 0 || selectors.some((s) => matchesSelector(s, stage, key)));
    return this.each(names, selection, async ({ stage, key }) => {
      const pulled = await this.pullArtifact(store, stage, key);
      // Listed a moment ago, gone now (deleted by hand): nothing to verify, nothing published.
      if (!pulled) throw new GraftError(REMOTE_ERROR_CODES.io, `${this.label(stage, key)} disappeared from ${this.url} while pulling.`);
      return { outcome: pulled.outcome, bytes: pulled.bytes };
    });
  }

  private async each(
    names: RemoteArtifactName[],
    selection: Selection,
    transfer: (name: RemoteArtifactName) => Promise<{ outcome: PushOutcome | PullOutcome; bytes: number }>,
  ): Promise<TransferReport[]> {
    const reports: TransferReport[] = [];
    for (const name of names) {
      let report: TransferReport;
      try {
        report = { ...name, ...(await transfer(name)) };
      } catch (error) {
        // Only per-artifact trouble is reported and skipped; a bad bucket or credentials stop everything.
        if (!(error instanceof GraftError) || isRemoteWideFailure(error)) throw error;
        report = { ...name, outcome: 'failed', bytes: 0, error };
      }
      reports.push(report);
      selection.onReport?.(report);
    }
    return reports;
  }

  private async head(name: string, doing: string): Promise<S3.HeadObjectCommandOutput | undefined> {
    try {
      return await this.client.send(new this.sdk.HeadObjectCommand({ Bucket: this.location.bucket, Key: name }));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.wrap(error, doing);
    }
  }

  private async getBytes(name: string, doing: string): Promise<Uint8Array | undefined> {
    try {
      const response = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.location.bucket, Key: name }));
      return await response.Body!.transformToByteArray();
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.wrap(error, doing);
    }
  }

  /** Streams one object into a new file; its byte count, or undefined if the object does not exist. */
  private async download(name: string, file: string, doing: string): Promise<number | undefined> {
    try {
      const response = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.location.bucket, Key: name }));
      // 'wx': the temp dir is ours and fresh, so an existing file means two manifest paths collided.
      await pipeline(response.Body as Readable, createWriteStream(file, { flags: 'wx' }));
      return response.ContentLength ?? 0;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.wrap(error, doing);
    }
  }

  /** Runs one SDK call, turning its failure into a GraftError that says what was being done. */
  private async guard<T>(doing: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.wrap(error, doing);
    }
  }

  /** An SDK or network failure as one GraftError saying what to check. */
  private wrap(error: unknown, doing: string): GraftError {
    if (error instanceof GraftError) return error;
    const name = (error as { name?: string } | undefined)?.name ?? '';
    const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
    const where = this.endpoint ? ` at ${this.endpoint}` : '';
    if (name === 'NoSuchBucket') {
      return new UsageError(REMOTE_ERROR_CODES.noBucket, `Could not ${doing}: the bucket "${this.location.bucket}" does not exist${where}. Create it, or fix --remote (and --endpoint).`, { cause: error });
    }
    if (name === 'CredentialsProviderError') {
      return new UsageError(REMOTE_ERROR_CODES.denied, `Could not ${doing}: no credentials found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE).`, { cause: error });
    }
    if (['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden'].includes(name) || status === 403) {
      return new UsageError(REMOTE_ERROR_CODES.denied, `Could not ${doing}: access denied${where} (${name || status}). Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's permissions.`, { cause: error });
    }
    const errno = networkCode(error);
    if (errno) {
      return new GraftError(REMOTE_ERROR_CODES.unreachable, `Could not ${doing}: the S3 endpoint${where || ' (AWS S3)'} does not answer (${errno}). Is the server running and --endpoint right?`, { cause: error });
    }
    const message = error instanceof Error ? error.message : String(error);
    return new GraftError(REMOTE_ERROR_CODES.io, `Could not ${doing}: ${name ? `${name}: ` : ''}${message}${status ? ` (HTTP ${status})` : ''}.`, { cause: error });
  }
}

function isRemoteWideFailure(error: GraftError): boolean {
  return error.code === REMOTE_ERROR_CODES.noBucket || error.code === REMOTE_ERROR_CODES.denied || error.code === REMOTE_ERROR_CODES.unreachable;
}

function isNotFound(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound';
}

function networkCode(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

/** The store's artifact, or undefined; a corrupt local copy is discarded so the remote's can replace it (as `graft run` does). */
async function openOrDiscard(store: ArtifactStore, stage: string, key: string): Promise<InputArtifact | undefined> {
  try {
    return await store.open(stage, key);
  } catch (error) {
    if (!(error instanceof CorruptArtifactError)) throw error;
    await store.discard(stage, key);
    return undefined;
  }
}

/** Local artifact directories the selectors match (every one without selectors), published or not: push reports the corrupt ones. */
async function selectLocal(store: ArtifactStore, selectors: string[] | undefined): Promise<RemoteArtifactName[]> {
  const seen = new Map<string, RemoteArtifactName>();
  for (const selector of selectors && selectors.length > 0 ? selectors : ['']) {
    for (const { stage, key } of await store.resolvePrefix(selector)) seen.set(`${stage}/${key}`, { stage, key });
  }
  return [...seen.values()].sort((a, b) => (a.stage < b.stage ? -1 : a.stage > b.stage ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Runs `task` over `items` with at most `limit` in flight; the first failure is thrown after the in-flight ones settle. */
async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}
