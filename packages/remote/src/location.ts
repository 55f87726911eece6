import { UsageError } from '@graft/core';
import { REMOTE_ERROR_CODES } from './errors.ts';

/** Where a remote lives: `s3://<bucket>/<prefix>`; prefix is '' or segments joined by '/', no trailing slash. */
export interface RemoteLocation {
  url: string;
  bucket: string;
  prefix: string;
}

// S3's own rules for new buckets (3-63 chars, lowercase, digits, '.', '-', letter or digit at both ends).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const EXAMPLE = 'Use s3://BUCKET or s3://BUCKET/PREFIX, e.g. --remote s3://my-bucket/graft.';

/**
 * Parses `--remote`. Only the s3 scheme exists; the prefix must be plain path segments
 * (no '.', '..', empty segments, backslashes, control characters, '?' or '#'), since
 * every object graft writes or reads is named under it.
 */
export function parseRemoteUrl(url: string): RemoteLocation {
  const bad = (why: string): UsageError => new UsageError(REMOTE_ERROR_CODES.badUrl, `Invalid remote URL ${JSON.stringify(url)}: ${why}. ${EXAMPLE}`);
  if (typeof url !== 'string' || url.trim() === '') throw bad('it is empty');
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(url);
  if (!match) throw bad('it has no scheme');
  if (match[1]!.toLowerCase() !== 's3') throw bad(`the scheme ${match[1]}:// is not supported (only s3:// remotes exist)`);
  const rest = match[2]!;
  if (/[?#]/.test(rest)) throw bad('query strings and fragments are not part of a bucket path');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(rest)) throw bad('it contains a backslash or a control character');
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  if (bucket === '') throw bad('the bucket name is missing');
  if (!BUCKET.test(bucket) || bucket.includes('..')) throw bad(`"${bucket}" is not a valid bucket name (3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit)`);
  const path = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/$/, '');
  const segments = path === '' ? [] : path.split('/');
  for (const segment of segments) {
    if (segment === '') throw bad('the prefix has an empty segment ("//")');
    if (segment === '.' || segment === '..') throw bad(`the prefix has a "${segment}" segment`);
  }
  return { url: `s3://${bucket}${path === '' ? '' : `/${path}`}`, bucket, prefix: path };
}

/** Parses `--endpoint`: an http(s) URL of an S3-compatible service (MinIO, Ceph, R2, ...). */
export function parseEndpoint(endpoint: string): string {
  const bad = (why: string): UsageError =>
    new UsageError(REMOTE_ERROR_CODES.badEndpoint, `Invalid S3 endpoint ${JSON.stringify(endpoint)}: ${why}. Use the service's base URL, e.g. --endpoint http://127.0.0.1:9000.`);
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw bad('not a URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw bad(`the scheme ${parsed.protocol} is not http: or https:`);
  if (parsed.search !== '' || parsed.hash !== '') throw bad('query strings and fragments are not allowed');
  if (parsed.username !== '' || parsed.password !== '') throw bad('put credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not in the URL');
  return parsed.toString().replace(/\/$/, '');
}
