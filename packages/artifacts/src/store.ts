import { randomBytes } from 'node:crypto';
import { mkdir, open as openFile, readdir, rename, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GraftError, type ArtifactManifest, type InputArtifact, type Producer } from '@graft/core';
import { ensureDirInside, entryKind, kindInside, listTree, notOursError, removeEntry } from './contained.ts';
import { errnoCode, exists, fsyncDir, fsyncFile, hashFile, newestMtime, storeIoError, treeBytes, walkTree } from './fs-util.ts';
import { computeKey } from './key.ts';
import { KeyLock, breakLock, isLive, readLock, type LockHolder, type LockWait } from './lock.ts';
import { STORE_INTERNAL_DIRS, STORE_MARKER, inspectStoreRoot, notAStoreError, writeStoreMarker, type StoreState } from './store-marker.ts';
import {
  CorruptArtifactError,
  manifestDigest,
  KEY_PATTERN,
  MANIFEST_FILE,
  RESERVED_NAMES,
  STAGE_NAME,
  checkManifestShape,
  checkNames,
  inspectArtifact,
  readManifest,
} from './manifest.ts';
import { ARTIFACT_ERROR_CODES } from './error-codes.ts';

/** Store-internal directories; none of them can be a stage name (STAGE_NAME forbids the dot). */
const TMP_DIR = '.tmp';
const CHECKPOINT_DIR = '.checkpoints';
const LOCK_DIR = '.locks';
const DISCARD_PREFIX = 'discard';

export interface PendingArtifact {
  stage: string;
  key: string;
  /** Empty temp dir inside <root>/.tmp for the stage to write into. */
  outDir: string;
  /** <root>/.checkpoints/<stage>/<key>: survives a crash, removed on publish. */
  checkpointDir: string;
}

export interface VerifyReport {
  stage: string;
  key: string;
  path: string;
  ok: boolean;
  problems: string[];
}

export interface PublishOptions {
  /**
   * Replace an existing artifact of the same key (`--force`). The old one stays in place
   * until the new one is complete and is then swapped out by rename, so a failed or
   * killed rebuild leaves the old artifact, and a reader's open files stay valid.
   */
  replace?: boolean;
}

export interface PublishInfo {
  stageVersion: string;
  params: unknown;
  inputs: Record<string, string>;
  durationMs: number;
  producer: Producer;
  metrics: Record<string, unknown>;
  /** What the stage read from outside the store, as it entered the key (manifest `sources`). */
  sources?: unknown;
}

export interface GcOptions {
  /** Keys to keep (typically every key some run record references). */
  keep: Set<string>;
  /** Only report what would be removed. */
  dryRun?: boolean;
}

export interface GcResult {
  /** Absolute paths removed (or that would be, with dryRun). */
  removed: string[];
  freedBytes: number;
  /** Entries gc left alone because they are not provably graft's (links, foreign files, dirs without a valid manifest). */
  kept: StoreAnomaly[];
}

/** Something in the store that graft did not make or will not follow; reported, never touched. */
export interface StoreAnomaly {
  path: string;
  reason: string;
  /** A symbolic link where graft keeps its own entries (damage to repair), not just a foreign file. */
  link?: boolean;
}

/** How a command uses the store: 'read' never creates or marks anything. */
export type StoreMode = 'read' | 'write';

export interface StoreOptions {
  /** How long begin() waits for another live process building the same key. Default 10 min. */
  lockTimeoutMs?: number;
  /** A lock not refreshed for this long is stale even if its pid looks alive. Default 5 min. */
  staleLockMs?: number;
  /** Unpublished checkpoints untouched for this long are collected by gc. Default 1 day. */
  checkpointMaxAgeMs?: number;
  /** Called when begin() starts waiting for another process's lock, then about every 30 s while it waits. */
  onLockWait?: (info: { stage: string; key: string } & LockWait) => void;
  /** Test seam: runs after manifest.json is written and flushed, right before the final rename. */
  beforeRename?: (pending: PendingArtifact) => void | Promise<void>;
}

interface ScannedArtifact {
  stage: string;
  key: string;
  path: string;
  /** The artifact's place holds a symbolic link (reported as corrupt, never followed). */
  link?: boolean;
}

interface ScanResult {
  artifacts: ScannedArtifact[];
  anomalies: StoreAnomaly[];
}

interface TempName {
  kind: 'build' | 'discard';
  stage: string;
  key: string;
  pid: number;
}

/** `<stage>.<key>.<pid>.<token>` or `discard.<stage>.<key>.<pid>.<token>`; stage and key never contain dots. */
function parseTempName(name: string): TempName | undefined {
  const parts = name.split('.');
  const kind = parts.length === 5 && parts[0] === DISCARD_PREFIX ? 'discard' : parts.length === 4 ? 'build' : undefined;
  if (!kind) return undefined;
  const [stage, key, pid] = kind === 'discard' ? parts.slice(1) : parts;
  if (!stage || !key || !pid || !/^\d+$/.test(pid) || !STAGE_NAME.test(stage) || !KEY_PATTERN.test(key) || !/^[0-9a-f]{1,64}$/.test(parts[parts.length - 1]!)) return undefined;
  return { kind, stage, key, pid: Number(pid) };
}

function token(): string {
  return randomBytes(6).toString('hex');
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The content-addressed artifact store (DESIGN.md §3):
 *
 *   <root>/<stage>/<key>/manifest.json + files   published artifacts
 *   <root>/.tmp/<stage>.<key>.<pid>.<token>/    artifacts being built (pid: gc tells live from dead)
 *   <root>/.checkpoints/<stage>/<key>/          resumable state of unfinished builds
 *   <root>/.locks/<stage>/<key>.lock            one builder per key
 *   <root>/runs/                                run records, owned by @graft/runs
 *
 * An artifact becomes visible only by the rename of a complete temp dir whose
 * manifest.json was written last and flushed, so a crash at any moment leaves at most
 * a temp dir that gc removes. Readers verify every file's size and sha256 before use.
 */
export class ArtifactStore {
  readonly root: string;
  private readonly lockTimeoutMs: number;
  private readonly staleLockMs: number;
  private readonly checkpointMaxAgeMs: number;
  private readonly options: StoreOptions;
  /** Builds begun by this store object, by outDir, so publish/abort can find their lock. */
  private readonly pending = new Map<string, { pending: PendingArtifact; lock: KeyLock }>();
  private readonly prepared = new Map<StoreMode, Promise<StoreState>>();

  constructor(root: string, options: StoreOptions = {}) {
    this.root = resolve(root);
    this.options = options;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 10 * 60_000;
    this.staleLockMs = options.staleLockMs ?? 5 * 60_000;
    this.checkpointMaxAgeMs = options.checkpointMaxAgeMs ?? 24 * 60 * 60_000;
  }

  /**
   * Checks that the root is a graft store before anything reads or changes it (once per
   * store object and mode). 'write' creates a missing or empty root as a store and marks
   * a store made by an older graft; a non-empty directory that is not a store is refused
   * (exit 2) in both modes, so nothing is ever created, renamed or deleted there.
   * Returns what the root was before (a 'legacy' result means it was adopted just now).
   */
  prepare(mode: StoreMode): Promise<StoreState> {
    let promise = this.prepared.get(mode);
    if (!promise) {
      promise = this.doPrepare(mode);
      this.prepared.set(mode, promise);
      promise.catch(() => this.prepared.delete(mode));
    }
    return promise;
  }

  private async doPrepare(mode: StoreMode): Promise<StoreState> {
    const state = await inspectStoreRoot(this.root);
    if (state.kind === 'foreign') throw notAStoreError(this.root, state.foreign);
    if (mode === 'write') {
      // Writers go into these; one that is a link or a file would send them outside the store.
      for (const name of STORE_INTERNAL_DIRS) {
        const kind = await entryKind(join(this.root, name));
        if (kind !== 'missing' && kind !== 'dir') throw notOursError(this.root, join(this.root, name), kind, name === 'runs' ? 'run records' : 'its own working files');
      }
    }
    if (mode === 'write' && state.kind !== 'marked') {
      try {
        await mkdir(this.root, { recursive: true });
        await writeStoreMarker(this.root);
      } catch (error) {
        throw storeIoError(error, this.root, 'create the artifact store');
      }
    }
    return state;
  }

  /**
   * `graft artifacts init`: makes `root` a store (creating it if needed), also when it
   * already holds other files, which then stay untouched; returns what was there before.
   */
  async init(): Promise<StoreState> {
    let state: StoreState;
    try {
      state = await inspectStoreRoot(this.root);
    } catch (error) {
      // A marker that is damaged or not a file is exactly what init repairs.
      if (!(error instanceof GraftError) || error.code !== ARTIFACT_ERROR_CODES.storeBadMarker) throw error;
      if ((await entryKind(join(this.root, STORE_MARKER))) !== 'file') throw error;
      state = { kind: 'legacy' };
    }
    if (state.kind !== 'marked') {
      try {
        await mkdir(this.root, { recursive: true });
        await writeStoreMarker(this.root);
      } catch (error) {
        throw storeIoError(error, this.root, 'create the artifact store');
      }
    }
    this.prepared.clear();
    return state;
  }

  artifactDir(stage: string, key: string): string {
    checkNames(stage, key);
    return join(this.root, stage, key);
  }

  private lockFile(stage: string, key: string): string {
    return join(this.root, LOCK_DIR, stage, `${key}.lock`);
  }

  private checkpointDir(stage: string, key: string): string {
    return join(this.root, CHECKPOINT_DIR, stage, key);
  }

  private label(stage: string, key: string): string {
    return `artifact ${stage}/${key.slice(0, 12)}`;
  }

  /** Whether a published artifact exists (its manifest is present). Does not hash anything. */
  async has(stage: string, key: string): Promise<boolean> {
    checkNames(stage, key);
    await this.prepare('read');
    const manifest = join(this.artifactDir(stage, key), MANIFEST_FILE);
    try {
      return (await kindInside(this.root, [stage, key, MANIFEST_FILE], 'artifacts')) === 'file';
    } catch (error) {
      throw storeIoError(error, manifest, `look up ${this.label(stage, key)}`);
    }
  }

  /**
   * The verified artifact, or undefined if there is none. Any directory at the
   * artifact's place that does not verify (bad file, missing manifest) is reported as
   * CorruptArtifactError naming each bad file; call discard() to rebuild it.
   */
  async open(stage: string, key: string): Promise<InputArtifact | undefined> {
    const dir = this.artifactDir(stage, key);
    await this.prepare('read');
    try {
      // A linked stage dir throws (exit 2); a linked artifact dir is corrupt (inspectArtifact).
      if ((await kindInside(this.root, [stage, key], `the artifacts of stage ${stage}`)) === 'missing') return undefined;
    } catch (error) {
      throw storeIoError(error, dir, `look up ${this.label(stage, key)}`);
    }
    const { manifest, problems } = await inspectArtifact(dir, stage, key);
    if (problems.length > 0 || !manifest) throw new CorruptArtifactError({ stage, key, path: dir, problems });
    return { key, path: dir, manifest };
  }

  /**
   * Removes an artifact (typically a corrupt one) so it can be rebuilt. The rename into
   * .tmp is the atomic step: readers see the artifact or nothing, never half of it.
   */
  async discard(stage: string, key: string): Promise<void> {
    const dir = this.artifactDir(stage, key);
    await this.prepare('write');
    let trash: string;
    try {
      // Both ends of the rename are checked: through a linked stage dir or .tmp it would move things outside the store.
      if ((await kindInside(this.root, [stage, key], `the artifacts of stage ${stage}`)) === 'missing') return;
      trash = join(await ensureDirInside(this.root, [TMP_DIR], 'in-flight builds'), `${DISCARD_PREFIX}.${stage}.${key}.${process.pid}.${token()}`);
      await rename(dir, trash);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
      throw storeIoError(error, dir, `remove ${this.label(stage, key)}`);
    }
    await fsyncDir(join(this.root, stage)).catch(() => undefined);
    // The artifact is already gone; a leftover trash dir is gc's to collect. A link is unlinked, its target untouched.
    await removeEntry(trash).catch(() => undefined);
  }

  /**
   * Starts building `stage/key`: takes the key's lock (waiting for a live holder up to
   * lockTimeoutMs, breaking stale ones), creates an empty temp outDir and ensures the
   * checkpoint dir exists. Finish with publish() or abort().
   */
  async begin(stage: string, key: string): Promise<PendingArtifact> {
    checkNames(stage, key);
    const label = this.label(stage, key);
    await this.prepare('write');
    const tmpRoot = join(this.root, TMP_DIR);
    try {
      await ensureDirInside(this.root, [TMP_DIR], 'in-flight builds');
      // Fail before the stage runs, not at publish: a linked stage dir would put the artifact outside the store.
      await kindInside(this.root, [stage, key], `the artifacts of stage ${stage}`);
      await ensureDirInside(this.root, [LOCK_DIR, stage], 'lock files');
      await ensureDirInside(this.root, [CHECKPOINT_DIR, stage], 'training checkpoints');
      if (!['missing', 'dir'].includes(await kindInside(this.root, [CHECKPOINT_DIR, stage, key], 'training checkpoints'))) {
        throw notOursError(this.root, this.checkpointDir(stage, key), await entryKind(this.checkpointDir(stage, key)), 'training checkpoints');
      }
    } catch (error) {
      throw storeIoError(error, tmpRoot, `prepare the artifact store for ${label}`);
    }
    const outName = `${stage}.${key}.${process.pid}.${token()}`;
    const lock = await KeyLock.acquire(this.lockFile(stage, key), outName, {
      timeoutMs: this.lockTimeoutMs,
      staleMs: this.staleLockMs,
      label,
      onWait: (wait) => this.options.onLockWait?.({ stage, key, ...wait }),
    });
    const pending: PendingArtifact = { stage, key, outDir: join(tmpRoot, outName), checkpointDir: this.checkpointDir(stage, key) };
    try {
      // We hold this key's lock, so any other temp dir of the same key belongs to a build
      // that died (kill -9, power loss): clear it now rather than waiting for `gc`.
      for (const name of await readdirIfPresent(tmpRoot)) {
        const parsed = parseTempName(name);
        if (parsed?.kind === 'build' && parsed.stage === stage && parsed.key === key && name !== outName) await removeEntry(join(tmpRoot, name));
      }
      await mkdir(pending.outDir);
      await ensureDirInside(this.root, [CHECKPOINT_DIR, stage, key], 'training checkpoints');
    } catch (error) {
      await removeEntry(pending.outDir).catch(() => undefined);
      await lock.release().catch(() => undefined);
      throw storeIoError(error, pending.outDir, `start building ${label}`);
    }
    this.pending.set(pending.outDir, { pending, lock });
    return pending;
  }

  /**
   * Seals outDir into the artifact: hashes every file, writes manifest.json last,
   * flushes files and directories, renames outDir to <root>/<stage>/<key>. If another
   * process published the key meanwhile and its copy verifies, that copy wins and ours
   * is dropped. On success the checkpoint dir is removed; either way the lock is
   * released and no partial artifact remains.
   */
  async publish(pending: PendingArtifact, info: PublishInfo, options: PublishOptions = {}): Promise<InputArtifact> {
    return this.finish(pending, (entry) => this.seal(entry, info), options);
  }

  /**
   * Publishes a copy of an artifact built elsewhere (pulled from a remote): outDir holds
   * the files and `manifestBytes` becomes manifest.json unchanged (same digest,
   * createdAt, producer). Everything is checked as open() checks it (a valid manifest
   * naming this stage and key, every listed file's size and sha256), the key must be the
   * one its manifest's stage, version, params, inputs and sources hash to (as verify()
   * checks), and files the manifest does not list are refused; then the same flush and
   * atomic rename as publish(). On any mismatch nothing is published: CorruptArtifactError
   * naming `origin` (where the copy came from), outDir removed, lock released.
   */
  async publishCopy(pending: PendingArtifact, manifestBytes: Uint8Array, origin: string): Promise<InputArtifact> {
    return this.finish(pending, async ({ stage, key, outDir }) => {
      const handle = await openFile(join(outDir, MANIFEST_FILE), 'wx');
      try {
        await handle.writeFile(manifestBytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      const { manifest, problems } = await inspectArtifact(outDir, stage, key);
      const tree = await walkTree(outDir);
      if (manifest) {
        // A copy is trusted only if its manifest explains its key, as verify() demands.
        problems.push(...keyProblems(manifest));
        const listed = new Set(manifest.files.map((file) => file.path));
        for (const path of tree.files) if (path !== MANIFEST_FILE && !listed.has(path)) problems.push(`${path}: not listed in ${MANIFEST_FILE}`);
      }
      if (problems.length > 0 || !manifest) throw new CorruptArtifactError({ stage, key, path: origin, problems });
      for (const path of tree.files) await fsyncFile(join(outDir, ...path.split('/')));
      for (const dir of [...tree.dirs].reverse()) await fsyncDir(dir);
      return manifest;
    });
  }

  /** publish() and publishCopy(): seal outDir, rename it into place, release the lock whatever happens. */
  private async finish(pending: PendingArtifact, seal: (pending: PendingArtifact) => Promise<ArtifactManifest>, options: PublishOptions = {}): Promise<InputArtifact> {
    const entry = this.pending.get(pending.outDir);
    if (!entry) {
      throw new GraftError(ARTIFACT_ERROR_CODES.notPending, `${pending.outDir} is not an artifact being built by this store (already published or aborted?).`);
    }
    const { stage, key, outDir } = entry.pending;
    const label = this.label(stage, key);
    let artifact: InputArtifact;
    try {
      const manifest = await seal(entry.pending);
      await ensureDirInside(this.root, [stage], `the artifacts of stage ${stage}`);
      await this.options.beforeRename?.(entry.pending);
      artifact = await this.moveIntoPlace(outDir, stage, key, manifest, options.replace ?? false);
      await fsyncDir(join(this.root, stage));
    } catch (error) {
      await removeEntry(outDir).catch(() => undefined);
      this.pending.delete(outDir);
      await entry.lock.release().catch(() => undefined);
      throw storeIoError(error, outDir, `publish ${label}`);
    }
    this.pending.delete(outDir);
    // Checkpoints are only for resuming this key; leftovers (if rm fails) are gc's.
    await removeEntry(entry.pending.checkpointDir).catch(() => undefined);
    await entry.lock.release().catch(() => undefined);
    return artifact;
  }

  /** Hashes and flushes outDir's files and writes manifest.json into it (last). */
  private async seal(pending: PendingArtifact, info: PublishInfo): Promise<ArtifactManifest> {
    const { stage, key, outDir } = pending;
    const tree = await walkTree(outDir);
    if (tree.files.includes(MANIFEST_FILE)) {
      throw new GraftError(
        ARTIFACT_ERROR_CODES.reservedName,
        `Stage ${stage} wrote ${MANIFEST_FILE} into its output directory; that name is reserved for the store's manifest. Give the file another name.`,
      );
    }
    const files = [];
    for (const path of tree.files) files.push({ path, ...(await hashFile(join(outDir, ...path.split('/')), { fsync: true })) });
    const draft: Omit<ArtifactManifest, 'digest'> = {
      key,
      stage,
      stageVersion: info.stageVersion,
      params: info.params,
      inputs: info.inputs,
      files,
      createdAt: new Date().toISOString(),
      durationMs: info.durationMs,
      producer: info.producer,
      metrics: info.metrics,
      ...(info.sources === undefined ? {} : { sources: info.sources }),
    };
    let text: string;
    let manifest: ArtifactManifest;
    try {
      // Round trip first: the digest must cover what a later open() reads back
      // (undefined fields dropped, NaN as null).
      const readBack = JSON.parse(JSON.stringify(draft)) as Omit<ArtifactManifest, 'digest'>;
      manifest = { ...readBack, digest: manifestDigest(readBack) };
      text = `${JSON.stringify(manifest, null, 2)}\n`;
    } catch (error) {
      throw new GraftError(ARTIFACT_ERROR_CODES.badManifest, `Cannot write the manifest of ${this.label(stage, key)}: params and metrics must be JSON (${(error as Error).message}).`, { cause: error });
    }
    const problems = checkManifestShape(manifest);
    if (problems.length > 0) {
      throw new GraftError(ARTIFACT_ERROR_CODES.badManifest, `Refusing to publish ${this.label(stage, key)} with an invalid manifest: ${problems.join('; ')}.`);
    }
    const handle = await openFile(join(outDir, MANIFEST_FILE), 'wx');
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    // Deepest first, so every entry is durable before the directory naming it.
    for (const dir of [...tree.dirs].reverse()) await fsyncDir(dir);
    return manifest;
  }

  private async moveIntoPlace(outDir: string, stage: string, key: string, manifest: ArtifactManifest, replace: boolean): Promise<InputArtifact> {
    const target = join(this.root, stage, key);
    if (replace && (await entryKind(target)) !== 'missing') {
      // rename(2) cannot swap non-empty directories in one step, so: old -> .tmp, new -> place.
      // The artifact is absent only between these two renames (microseconds), and any
      // file a reader already opened in the old one stays readable until it closes it.
      const trash = join(this.root, TMP_DIR, `${DISCARD_PREFIX}.${stage}.${key}.${process.pid}.${token()}`);
      await rename(target, trash);
      try {
        await rename(outDir, target);
      } catch (error) {
        await rename(trash, target).catch(() => undefined);
        throw error;
      }
      await removeEntry(trash).catch(() => undefined);
      return { key, path: target, manifest };
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await rename(outDir, target);
        return { key, path: target, manifest };
      } catch (error) {
        if (errnoCode(error) === 'ENOENT' && (await exists(outDir))) {
          // The stage dir vanished (removed by hand or by another tool): recreate it and retry.
          await ensureDirInside(this.root, [stage], `the artifacts of stage ${stage}`);
          continue;
        }
        // rename(2) refuses to replace a non-empty directory: someone got there first.
        if (!['EEXIST', 'ENOTEMPTY', 'EPERM'].includes(errnoCode(error) ?? '')) throw error;
      }
      const existing = await inspectArtifact(target, stage, key);
      if (existing.problems.length === 0 && existing.manifest) {
        await removeEntry(outDir);
        return { key, path: target, manifest: existing.manifest };
      }
      // A corrupt or half-made directory from outside this protocol: replace it with ours.
      await this.discard(stage, key);
    }
    throw new GraftError(ARTIFACT_ERROR_CODES.publishRace, `Could not move ${this.label(stage, key)} into ${target}: the directory keeps reappearing. Is another tool writing into the store?`);
  }

  /** Gives up a build: deletes outDir and releases the lock, keeping checkpoints for a resume. Idempotent. */
  async abort(pending: PendingArtifact): Promise<void> {
    const entry = this.pending.get(pending.outDir);
    this.pending.delete(pending.outDir);
    try {
      await removeEntry(pending.outDir);
      // Keep checkpoints, but not an empty checkpoint dir begin() made for nothing.
      await rmdir(pending.checkpointDir).catch(() => undefined);
    } catch (error) {
      await entry?.lock.release().catch(() => undefined);
      throw storeIoError(error, pending.outDir, `clean up the unfinished ${this.label(pending.stage, pending.key)}`);
    }
    await entry?.lock.release();
  }

  /**
   * Every `<stage>/<key>` entry, published or not, and everything else at those levels
   * that graft did not make (anomalies). Links are listed, never entered.
   */
  private async scan(): Promise<ScanResult> {
    await this.prepare('read');
    const artifacts: ScannedArtifact[] = [];
    const anomalies: StoreAnomaly[] = [];
    let stages;
    try {
      stages = await readdir(this.root, { withFileTypes: true });
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return { artifacts, anomalies };
      throw storeIoError(error, this.root, 'list the artifact store');
    }
    for (const stageEntry of stages) {
      const name = stageEntry.name;
      const stageDir = join(this.root, name);
      if (name === STORE_MARKER) continue;
      if (STORE_INTERNAL_DIRS.has(name)) {
        if (!stageEntry.isDirectory()) {
          const link = stageEntry.isSymbolicLink();
          anomalies.push({ path: stageDir, reason: `${link ? 'a symbolic link' : 'not a directory'} where graft keeps its ${name} directory (not followed)`, ...(link ? { link } : {}) });
        }
        continue;
      }
      if (name.startsWith(`${STORE_MARKER}.`) && name.endsWith('.tmp')) continue;
      if (!STAGE_NAME.test(name) || RESERVED_NAMES.has(name)) {
        anomalies.push({ path: stageDir, reason: 'not made by graft' });
        continue;
      }
      if (stageEntry.isSymbolicLink()) {
        anomalies.push({ path: stageDir, reason: 'a symbolic link where graft keeps a stage directory (not followed)', link: true });
        continue;
      }
      if (!stageEntry.isDirectory()) {
        anomalies.push({ path: stageDir, reason: 'not made by graft' });
        continue;
      }
      let keys;
      try {
        keys = await readdir(stageDir, { withFileTypes: true });
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') continue;
        throw storeIoError(error, stageDir, 'list the artifact store');
      }
      for (const keyEntry of keys) {
        const path = join(stageDir, keyEntry.name);
        if (KEY_PATTERN.test(keyEntry.name) && keyEntry.isSymbolicLink()) artifacts.push({ stage: name, key: keyEntry.name, path, link: true });
        else if (KEY_PATTERN.test(keyEntry.name) && keyEntry.isDirectory()) artifacts.push({ stage: name, key: keyEntry.name, path });
        else anomalies.push({ path, reason: 'not an artifact made by graft' });
      }
    }
    artifacts.sort((a, b) => compareStrings(a.stage, b.stage) || compareStrings(a.key, b.key));
    anomalies.sort((a, b) => compareStrings(a.path, b.path));
    return { artifacts, anomalies };
  }

  /** Entries of the store graft did not make or will not follow (links, foreign files); commands report them. */
  async anomalies(): Promise<StoreAnomaly[]> {
    const { artifacts, anomalies } = await this.scan();
    return [...anomalies, ...artifacts.filter((a) => a.link).map((a) => ({ path: a.path, reason: 'a symbolic link where graft keeps an artifact (not followed)', link: true }))].sort((a, b) =>
      compareStrings(a.path, b.path),
    );
  }

  /** Manifests of every published artifact, oldest first. Unreadable manifests are skipped (verify reports them). */
  async list(): Promise<ArtifactManifest[]> {
    const manifests: ArtifactManifest[] = [];
    for (const artifact of (await this.scan()).artifacts) {
      if (artifact.link) continue;
      try {
        manifests.push(await readManifest(join(artifact.path, MANIFEST_FILE)));
      } catch (error) {
        if (!(error instanceof CorruptArtifactError)) throw error;
      }
    }
    return manifests.sort((a, b) => compareStrings(a.createdAt, b.createdAt) || compareStrings(a.stage, b.stage) || compareStrings(a.key, b.key));
  }

  /**
   * Artifact directories whose key starts with `prefix` (case-insensitive), across
   * stages. `stage/prefix` restricts the match to one stage, as `graft artifacts ls` prints them.
   */
  async resolvePrefix(prefix: string): Promise<{ stage: string; key: string; path: string }[]> {
    let wanted = prefix.trim().toLowerCase();
    let stage: string | undefined;
    const slash = wanted.indexOf('/');
    if (slash >= 0) {
      stage = wanted.slice(0, slash);
      wanted = wanted.slice(slash + 1);
    }
    return (await this.scan()).artifacts.filter((a) => a.key.toLowerCase().startsWith(wanted) && (stage === undefined || a.stage.toLowerCase() === stage));
  }

  /** Checks every artifact (or those matching a key prefix) against its manifest. */
  async verify(prefix?: string): Promise<VerifyReport[]> {
    const targets = prefix === undefined ? (await this.scan()).artifacts : await this.resolvePrefix(prefix);
    const reports: VerifyReport[] = [];
    for (const { stage, key, path } of targets) {
      const { manifest, problems } = await inspectArtifact(path, stage, key);
      if (manifest) problems.push(...keyProblems(manifest));
      reports.push({ stage, key, path, ok: problems.length === 0 && manifest !== undefined, problems });
    }
    return reports;
  }

  private async lockIsLive(stage: string, key: string): Promise<{ live: boolean; holder?: LockHolder }> {
    if (!STAGE_NAME.test(stage) || !KEY_PATTERN.test(key)) return { live: false };
    const state = await readLock(this.lockFile(stage, key));
    if (!state || !isLive(state, this.staleLockMs)) return { live: false };
    return { live: true, ...(state.holder ? { holder: state.holder } : {}) };
  }

  /**
   * Why the unreferenced artifact dir `path` may not be deleted, or undefined if it is
   * provably graft's: a real directory with a valid manifest naming this stage/key and
   * nothing but plain files and directories inside.
   */
  private async notProvablyOurs(stage: string, key: string, path: string): Promise<string | undefined> {
    try {
      const manifest = await readManifest(join(path, MANIFEST_FILE));
      if (manifest.stage !== stage || manifest.key !== key) return `its ${MANIFEST_FILE} describes ${manifest.stage}/${manifest.key.slice(0, 12)}, not this place`;
    } catch (error) {
      if (error instanceof CorruptArtifactError) return `no valid ${MANIFEST_FILE} (${error.problems[0]}), so not provably made by graft; delete it by hand if it is yours to delete`;
      throw error;
    }
    const tree = await listTree(path);
    const odd = [...tree.links, ...tree.special];
    if (odd.length > 0) return `contains ${odd[0]}, which is not a plain file (a link is never followed or deleted by graft)`;
    return undefined;
  }

  /** Entries of a store-internal dir; none if it is a link or not a directory. */
  private async internalEntries(segments: string[]): Promise<string[]> {
    const path = join(this.root, ...segments);
    const kind = await entryKind(path);
    if (kind === 'missing') return [];
    // A link or file here is already reported by scan(); it is never entered.
    if (kind !== 'dir') return [];
    return readdirIfPresent(path);
  }

  /**
   * Removes only what is provably graft's: unreferenced artifacts with a valid manifest
   * (unless a live process holds their lock), temp dirs with graft's names that no live
   * lock owns, checkpoints of published keys and abandoned checkpoints (unlocked,
   * untouched for checkpointMaxAgeMs), and stale graft lock files. Links are never
   * followed; foreign files and anything without a manifest are reported in `kept`.
   * Never touches <root>/runs.
   */
  async gc(options: GcOptions): Promise<GcResult> {
    const dryRun = options.dryRun ?? false;
    const removed: string[] = [];
    let freedBytes = 0;
    const kept: StoreAnomaly[] = [];
    // Nothing to collect in a store that does not exist, and no reason to create one.
    if ((await this.prepare('read')).kind === 'absent') return { removed, freedBytes, kept };
    if (!dryRun) await this.prepare('write');
    const collect = async (path: string, remove: () => Promise<void>): Promise<void> => {
      freedBytes += await treeBytes(path);
      removed.push(path);
      if (!dryRun) await remove();
    };
    try {
      const scanned = await this.scan();
      kept.push(...scanned.anomalies);
      for (const artifact of scanned.artifacts) {
        if (options.keep.has(artifact.key)) continue;
        if (artifact.link) {
          kept.push({ path: artifact.path, reason: 'a symbolic link where graft keeps an artifact (not followed)', link: true });
          continue;
        }
        if ((await this.lockIsLive(artifact.stage, artifact.key)).live) continue;
        const reason = await this.notProvablyOurs(artifact.stage, artifact.key, artifact.path);
        if (reason) {
          kept.push({ path: artifact.path, reason });
          continue;
        }
        await collect(artifact.path, () => this.discard(artifact.stage, artifact.key));
      }

      const tmpRoot = join(this.root, TMP_DIR);
      for (const name of await this.internalEntries([TMP_DIR])) {
        const path = join(tmpRoot, name);
        const parsed = parseTempName(name);
        if (!parsed || (await entryKind(path)) !== 'dir') {
          kept.push({ path, reason: 'not a temp directory made by graft' });
          continue;
        }
        if (parsed.kind === 'build') {
          const lock = await this.lockIsLive(parsed.stage, parsed.key);
          if (lock.live && lock.holder?.outDir === name) continue;
        }
        await collect(path, () => removeEntry(path));
      }

      const checkpointRoot = join(this.root, CHECKPOINT_DIR);
      for (const stage of await this.internalEntries([CHECKPOINT_DIR])) {
        const stageDir = join(checkpointRoot, stage);
        if (!STAGE_NAME.test(stage) || (await entryKind(stageDir)) !== 'dir') {
          kept.push({ path: stageDir, reason: 'not a checkpoint directory made by graft' });
          continue;
        }
        for (const key of await readdirIfPresent(stageDir)) {
          const path = join(stageDir, key);
          if (!KEY_PATTERN.test(key) || (await entryKind(path)) !== 'dir') {
            kept.push({ path, reason: 'not a checkpoint directory made by graft' });
            continue;
          }
          // A live build (even a forced rebuild of a published key) may be writing checkpoints right now.
          if ((await this.lockIsLive(stage, key)).live) continue;
          const published = (await kindInside(this.root, [stage, key, MANIFEST_FILE], 'artifacts').catch(() => 'missing')) === 'file';
          if (!published && Date.now() - (await newestMtime(path)) <= this.checkpointMaxAgeMs) continue;
          await collect(path, () => removeEntry(path));
        }
      }

      // Empty stage dirs are left alone on purpose: removing one could race a publish
      // or begin that has just created it.
      const lockRoot = join(this.root, LOCK_DIR);
      for (const stage of await this.internalEntries([LOCK_DIR])) {
        const stageDir = join(lockRoot, stage);
        if (!STAGE_NAME.test(stage) || (await entryKind(stageDir)) !== 'dir') {
          kept.push({ path: stageDir, reason: 'not a lock directory made by graft' });
          continue;
        }
        for (const name of await readdirIfPresent(stageDir)) {
          const file = join(stageDir, name);
          if (name.endsWith('.lock.break') && KEY_PATTERN.test(name.slice(0, -'.lock.break'.length))) continue; // a breaker's short-lived guard
          const key = name.endsWith('.lock') ? name.slice(0, -'.lock'.length) : '';
          if (!KEY_PATTERN.test(key) || (await entryKind(file)) !== 'file') {
            kept.push({ path: file, reason: 'not a lock file made by graft' });
            continue;
          }
          const state = await readLock(file);
          if (!state) continue;
          if (!state.holder && !/^[0-9a-f]{64}$/.test(key)) {
            // graft's own half-written locks are named by a sha256 key; anything else that is not graft's JSON is foreign.
            kept.push({ path: file, reason: 'not a lock file made by graft (no graft lock record inside)' });
            continue;
          }
          if (isLive(state, this.staleLockMs)) continue;
          // Through the lock protocol's guard: a plain unlink could hit a lock taken a moment ago.
          await collect(file, async () => void (await breakLock(file, state.raw)));
        }
      }
    } catch (error) {
      throw storeIoError(error, this.root, 'clean the artifact store');
    }
    return { removed, freedBytes, kept };
  }
}

async function readdirIfPresent(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort(compareStrings);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return [];
    throw error;
  }
}

/**
 * The key re-derived from what the manifest records (stage, version, params, input keys and
 * sources) must be the key the artifact is stored under: otherwise the manifest does not
 * describe how the artifact was built, and a cache hit on it would be a lie.
 */
function keyProblems(manifest: ArtifactManifest): string[] {
  const derived = computeKey({ stage: manifest.stage, stageVersion: manifest.stageVersion, params: manifest.params, inputs: manifest.inputs, sources: manifest.sources });
  if (derived === manifest.key) return [];
  const why =
    manifest.sources === undefined
      ? ' (the manifest records no sources: if the stage reads files outside the store, it was built by a graft that did not record them; rebuild it with `graft run <entry> --force`)'
      : '';
  return [`${MANIFEST_FILE}: the key re-derived from its stage, version, params, inputs and sources is ${derived.slice(0, 12)}…, not ${manifest.key.slice(0, 12)}…${why}`];
}
