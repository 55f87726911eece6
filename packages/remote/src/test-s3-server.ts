/**
 * A real S3 API server for tests: s3rver (a Koa app serving the S3 REST API from a
 * directory; it checks the access key id, not SigV4 signatures) on 127.0.0.1 and a
 * free port. Never the internet, never a mock of the client.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

// The AWS SDK's notice that its 2027 releases drop Node 20 is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** The only access key s3rver knows (any other key id is refused with InvalidAccessKeyId). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface TestS3Server {
  endpoint: string;
  /** The bucket created at start. */
  bucket: string;
  /** The directory s3rver keeps objects in (`<bucket>/<key>._S3rver_object`): tests corrupt objects here. */
  directory: string;
  /** Environment for a child `graft` process talking to this server. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startS3Server(bucket = 'graft-test'): Promise<TestS3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'graft-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    directory,
    env: {
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: '',
      AWS_ENDPOINT_URL_S3: '',
    },
    async stop() {
      // Keep-alive sockets of clients would hold close() open.
      server.httpServer.closeAllConnections();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
