/**
 * The artifact manifest format (DESIGN.md §3), declared once: the zod schema is the
 * format, and ArtifactManifest, ArtifactFile and Producer are derived from it, so the
 * type stages see and the check the store runs on every read and write cannot drift.
 * The store (@graft/artifacts) reads, writes and digests manifests; this file only says
 * what a valid one is.
 */
import { z } from 'zod';

/** `artifacts/<stage>/<key>/manifest.json`, written last, after every file is in place. */
export const MANIFEST_FILE = 'manifest.json';

/**
 * Stage names become directory names and parts of temp-dir names (split on '.'), so
 * they are kept to one safe path segment without dots. `runs` is taken by run records.
 */
export const STAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** Keys are sha256 hex in practice; anything that is one safe, dot-free path segment is accepted. */
export const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** A manifest path must stay inside its artifact: relative, POSIX, no '.', '..' or empty segments. */
export function isSafeRelativePath(path: string): boolean {
  if (path === '' || path.startsWith('/') || path.includes('\\') || path.includes('\0')) return false;
  if (/^[A-Za-z]:/.test(path)) return false;
  return path.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

/** One file of an artifact, as recorded in its manifest. `path` is relative to the artifact dir, POSIX separators. */
const artifactFileSchema = z.object({
  path: z.string().refine(isSafeRelativePath, 'must be a relative POSIX path inside the artifact'),
  bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
});

/**
 * Who produced an artifact (DESIGN.md §3). Stages may add fields via StageResult.producer.
 * The well-known optional fields are exactOptional so they validate exactly as the
 * string catchall does (absent is fine, undefined is not), while the type names them.
 */
const producerSchema = z
  .object({
    graft: z.string(),
    node: z.string(),
    gitCommit: z.string().exactOptional(),
    tfjs: z.string().exactOptional(),
    backend: z.string().exactOptional(),
  })
  .catchall(z.string());

/** The known fields. The type is derived from this strict object, so a typo is a type error. */
const manifestFields = z.object({
  /** sha256 hex of the canonical JSON {stage, stageVersion, params, inputs[, sources]}. */
  key: z.string().regex(KEY_PATTERN, 'must be an artifact key'),
  stage: z.string().regex(STAGE_NAME, 'must be a stage name'),
  stageVersion: z.string(),
  params: z.unknown(),
  /** Input slot name -> key of the artifact consumed there. */
  inputs: z.record(z.string(), z.string()),
  /**
   * What the stage read from outside the store, as it entered the key (ingest: its source
   * files' sha256s), so the key can be re-derived from the manifest alone, as DVC's lock
   * file records deps. Absent for stages that read only their inputs.
   */
  sources: z.unknown().optional(),
  files: z.array(artifactFileSchema),
  createdAt: z.iso.datetime({ offset: true }),
  durationMs: z.number().min(0),
  producer: producerSchema,
  metrics: z.record(z.string(), z.unknown()),
  /**
   * sha256 of the canonical JSON of every other manifest field: the files' hashes protect
   * the files, this protects the manifest itself (metrics, params) from silent edits.
   */
  digest: z.string().regex(/^[0-9a-f]{64}$/, 'must be the manifest digest (64 lowercase hex digits); this manifest was not written by this graft or was edited'),
});

/**
 * The schema every manifest is checked against, on write and on read. Loose: fields added
 * by later graft versions survive a read by this one (and stay in the digest).
 */
export const manifestSchema = manifestFields.loose().superRefine((manifest, ctx) => {
  const seen = new Set<string>();
  manifest.files.forEach((file, index) => {
    if (file.path === MANIFEST_FILE) ctx.addIssue({ code: 'custom', path: ['files', index, 'path'], message: `${MANIFEST_FILE} cannot list itself` });
    if (seen.has(file.path)) ctx.addIssue({ code: 'custom', path: ['files', index, 'path'], message: `duplicate path ${file.path}` });
    seen.add(file.path);
  });
});

/** `artifacts/<stage>/<key>/manifest.json`: see manifestFields for each field. */
export type ArtifactManifest = z.output<typeof manifestFields>;
export type ArtifactFile = z.output<typeof artifactFileSchema>;
export type Producer = z.output<typeof producerSchema>;
