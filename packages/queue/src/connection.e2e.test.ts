/** connectRedis against a real redis-server on loopback (started here), a closed port and a silent socket. */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, describeLostRedis, parseQueueUrl } from './connection.ts';
import { QUEUE_ERROR_CODES } from './errors.ts';
import { REDIS_SERVER_MISSING, freePort, startRedisServer, type TestRedisServer } from './test-redis-server.ts';

describe.skipIf(REDIS_SERVER_MISSING !== undefined)('connectRedis', () => {
  let server: TestRedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('connects to a live server', async () => {
    const client = await connectRedis(parseQueueUrl(server.url), 5_000);
    try {
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });

  it('a port nobody listens on is QUEUE_UNREACHABLE at once, naming the URL', async () => {
    const port = await freePort();
    const started = Date.now();
    await expect(connectRedis(parseQueueUrl(`redis://127.0.0.1:${port}`), 5_000)).rejects.toMatchObject({
      code: QUEUE_ERROR_CODES.unreachable,
      exitCode: 1,
      message: expect.stringContaining(`Redis at redis://127.0.0.1:${port}: the connection was refused`),
    });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a server that never answers gives up after the timeout', async () => {
    // A listening socket that accepts and says nothing: what a firewall black hole or a wrong service looks like.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const started = Date.now();
      await expect(connectRedis(parseQueueUrl(`redis://127.0.0.1:${port}`), 1_000)).rejects.toMatchObject({
        code: QUEUE_ERROR_CODES.unreachable,
        message: expect.stringContaining('no answer within 1 s'),
      });
      expect(Date.now() - started).toBeLessThan(4_000);
    } finally {
      silent.close();
    }
  });

  it('wrong credentials are QUEUE_ACCESS_DENIED, exit 2', async () => {
    await expect(connectRedis(parseQueueUrl(`redis://nobody:wrong@127.0.0.1:${server.port}`), 5_000)).rejects.toMatchObject({ code: QUEUE_ERROR_CODES.denied, exitCode: 2 });
  });

  it('a short command\'s connection fails its commands at once when Redis goes away, never waits for it', async () => {
    const own = await startRedisServer();
    const location = parseQueueUrl(own.url);
    const client = await connectRedis(location, 2_000, { reconnect: false });
    try {
      await own.stop();
      const started = Date.now();
      const error = await client.get('x').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(describeLostRedis(location, error)).toMatchObject({ code: QUEUE_ERROR_CODES.unreachable, message: expect.stringContaining(`Lost Redis at ${own.url}`) });
    } finally {
      client.disconnect();
      await own.stop();
    }
  });
});
