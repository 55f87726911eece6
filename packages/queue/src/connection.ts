/**
 * Where the queue lives (`--queue redis://HOST:PORT`) and how graft connects to it: one
 * parse that names every problem, and a first connection that gives up after a timeout
 * with a sentence saying what failed, instead of ioredis's default of retrying forever.
 */
import { GraftError, UsageError } from '@graft/core';
import { Redis, type RedisOptions } from 'ioredis';
import { QUEUE_ERROR_CODES } from './errors.ts';

export interface QueueLocation {
  /** The URL without its password, for messages and logs. */
  url: string;
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
}

const EXAMPLE = 'Use redis://HOST:PORT (or redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss:// for TLS), e.g. --queue redis://127.0.0.1:6379.';

/** Parses `--queue`. Only redis:// and rediss:// exist; the default port is 6379 and the default db 0. */
export function parseQueueUrl(url: string): QueueLocation {
  const shown = typeof url === 'string' ? url.replace(/(\/\/[^/@]*:)[^/@]*@/, '$1***@') : String(url);
  const bad = (why: string): UsageError => new UsageError(QUEUE_ERROR_CODES.badUrl, `Invalid queue URL ${JSON.stringify(shown)}: ${why}. ${EXAMPLE}`);
  if (typeof url !== 'string' || url.trim() === '') throw bad('it is empty');
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url)) throw bad('it has no scheme');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad('it is not a URL');
  }
  const scheme = parsed.protocol.slice(0, -1).toLowerCase();
  if (scheme !== 'redis' && scheme !== 'rediss') throw bad(`the scheme ${scheme}:// is not supported (the queue is Redis: redis:// or rediss://)`);
  if (parsed.hostname === '') throw bad('the host is missing');
  if (parsed.search !== '' || parsed.hash !== '') throw bad('query strings and fragments are not supported');
  // new URL() already refuses ports above 65535; port 0 is not a server's port.
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  if (port === 0) throw bad('port 0 is not a port a server listens on');
  const path = parsed.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,2}$/.test(path)) throw bad(`"/${path}" is not a database number (redis://HOST:PORT/0 .. /15)`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const username = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  const auth = username !== '' || password !== '' ? `${username}${password === '' ? '' : ':***'}@` : '';
  return {
    url: `${scheme}://${auth}${parsed.host}${path === '' ? '' : `/${path}`}`,
    host,
    port,
    db: path === '' ? 0 : Number(path),
    ...(username === '' ? {} : { username }),
    ...(password === '' ? {} : { password }),
    tls: scheme === 'rediss',
  };
}

/** ioredis options for a location; `connectTimeoutMs` bounds each connection attempt. */
export function redisOptions(location: QueueLocation, connectTimeoutMs: number): RedisOptions {
  return {
    host: location.host,
    port: location.port,
    db: location.db,
    ...(location.username === undefined ? {} : { username: location.username }),
    ...(location.password === undefined ? {} : { password: location.password }),
    ...(location.tls ? { tls: { servername: location.host } } : {}),
    connectTimeout: connectTimeoutMs,
    // BullMQ's blocking commands need this (it warns and overrides otherwise).
    maxRetriesPerRequest: null,
    // Reconnect after a lost connection with a capped backoff; how long a worker keeps
    // waiting for Redis to come back is the worker's decision (redisLostTimeoutMs).
    retryStrategy: (times: number) => Math.min(250 * 2 ** Math.min(times, 6), 5_000),
  };
}

/** Plain sentence for an ioredis connection failure. */
function describeConnectError(location: QueueLocation, error: unknown, timeoutMs: number): GraftError {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const where = `Redis at ${location.url}`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || /ENOTFOUND|EAI_AGAIN/.test(message)) {
    return new UsageError(QUEUE_ERROR_CODES.unknownHost, `Cannot reach ${where}: the host name ${location.host} does not resolve. Check the --queue URL.`, { cause: error });
  }
  if (/WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(message)) {
    return new UsageError(QUEUE_ERROR_CODES.denied, `${where} refused the credentials (${message}). Put the right user and password in the URL: redis://USER:PASSWORD@HOST:PORT.`, { cause: error });
  }
  const reason =
    code === 'ECONNREFUSED' || /ECONNREFUSED/.test(message)
      ? 'the connection was refused (is redis-server running and listening on that address?)'
      : code === 'ETIMEDOUT' || /timed? ?out/i.test(message)
        ? `no answer within ${Math.round(timeoutMs / 1000)} s`
        : message;
  return new GraftError(QUEUE_ERROR_CODES.unreachable, `Cannot reach ${where}: ${reason}. Start Redis or fix --queue, then retry.`, { cause: error });
}

/**
 * A connected client, or a GraftError after at most `timeoutMs`: the first connection
 * is tried once (no retry loop), answers PING, and runs a Redis new enough for BullMQ.
 * Later disconnects reconnect with backoff (see redisOptions).
 */
export async function connectRedis(location: QueueLocation, timeoutMs: number, options: { reconnect?: boolean } = {}): Promise<Redis> {
  const reconnect = options.reconnect ?? true;
  const client = new Redis({
    ...redisOptions(location, timeoutMs),
    lazyConnect: true,
    retryStrategy: () => null,
    // A short command (graft sweep, status) must end even if Redis stops answering mid-way;
    // a worker's connection carries BullMQ's blocking reads, which a timeout would break.
    ...(reconnect ? {} : { commandTimeout: timeoutMs }),
  });
  // ioredis emits 'error' for every failed attempt; unhandled, that would crash the process.
  let lastError: unknown;
  client.on('error', (error) => (lastError = error));
  let timer: NodeJS.Timeout | undefined;
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
    });
    await Promise.race([client.connect(), deadline]);
    await Promise.race([client.ping(), deadline]);
    const info = await Promise.race([client.info('server'), deadline]);
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (version && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
      throw new UsageError(QUEUE_ERROR_CODES.redisTooOld, `Redis at ${location.url} is version ${version[1]}.${version[2]}; BullMQ needs 6.2 or newer.`);
    }
  } catch (error) {
    client.disconnect();
    if (error instanceof GraftError) throw error;
    // After a failed attempt ioredis rejects with "Connection is closed."; the 'error' event had the cause.
    const cause = error instanceof Error && /Connection is closed/.test(error.message) && lastError ? lastError : error;
    throw describeConnectError(location, cause, timeoutMs);
  } finally {
    clearTimeout(timer);
  }
  // From here on, a worker's lost connection is retried (the worker decides for how long);
  // a short command's fails its pending commands at once.
  if (reconnect) client.options.retryStrategy = redisOptions(location, timeoutMs).retryStrategy!;
  return client;
}

/**
 * A failure of a command on an established connection, as a plain sentence: Redis went away
 * or stopped answering. GraftErrors (the caller's own) pass through unchanged.
 */
export function describeLostRedis(location: QueueLocation, error: unknown): unknown {
  if (error instanceof GraftError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/Connection is closed|Command timed out|ECONNRESET|ECONNREFUSED|EPIPE|Stream isn't writeable|max retries/i.test(message)) {
    return new GraftError(QUEUE_ERROR_CODES.unreachable, `Lost Redis at ${location.url} (${message}). Check that Redis is running, then retry.`, { cause: error });
  }
  return error;
}
