/**
 * The compute backends, declared once (DESIGN.md §5) and fed to everything that names
 * them: the config schema (zod), `--backend` choices (yargs), bench's option check, the
 * stage context and backend selection. Adding a backend starts here.
 */

/** tfjs backends graft can compute on, in the order `auto` tries them (fastest first). */
export const COMPUTE_BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type ComputeBackend = (typeof COMPUTE_BACKENDS)[number];

/** What a user may ask for: a backend by name, or `auto` (the first of COMPUTE_BACKENDS that loads). */
export const BACKEND_REQUESTS = ['auto', ...COMPUTE_BACKENDS] as const;
export type BackendRequest = (typeof BACKEND_REQUESTS)[number];

export function isBackendRequest(value: unknown): value is BackendRequest {
  return typeof value === 'string' && (BACKEND_REQUESTS as readonly string[]).includes(value);
}
