import { createHash } from 'node:crypto';
import { canonicalJson } from '@graft/core';

export interface KeySpec {
  stage: string;
  stageVersion: string;
  params: unknown;
  /** Input slot name -> key of the upstream artifact. */
  inputs: Record<string, string>;
  /**
   * Fingerprint of content outside the store that the params point at (StageDefinition.fingerprint).
   * Only hashed when present, so stages without external sources keep the four-field key.
   */
  sources?: unknown;
}

/**
 * The artifact key: sha256 hex of the canonical JSON of exactly these four fields
 * (DESIGN.md §3), plus `sources` when a stage fingerprints external data. Extra
 * properties on `spec` are ignored on purpose, so callers can pass a richer object
 * without silently changing every key.
 */
export function computeKey(spec: KeySpec): string {
  const fields = { stage: spec.stage, stageVersion: spec.stageVersion, params: spec.params, inputs: spec.inputs };
  const canonical = canonicalJson(spec.sources === undefined ? fields : { ...fields, sources: spec.sources });
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}
