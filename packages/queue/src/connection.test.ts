import { describe, expect, it } from 'vitest';
import { parseQueueUrl } from './connection.ts';
import { QUEUE_ERROR_CODES } from './errors.ts';

describe('parseQueueUrl', () => {
  it('reads host, port, db and credentials, and never shows the password', () => {
    expect(parseQueueUrl('redis://127.0.0.1:6380')).toEqual({ url: 'redis://127.0.0.1:6380', host: '127.0.0.1', port: 6380, db: 0, tls: false });
    expect(parseQueueUrl('redis://queue.example')).toMatchObject({ host: 'queue.example', port: 6379, db: 0 });
    expect(parseQueueUrl('rediss://u:s%40cret@h:1/3')).toEqual({ url: 'rediss://u:***@h:1/3', host: 'h', port: 1, db: 3, username: 'u', password: 's@cret', tls: true });
    expect(parseQueueUrl('redis://[::1]:7000')).toMatchObject({ host: '::1', port: 7000 });
  });

  it.each([
    ['', 'it is empty'],
    ['127.0.0.1:6379', 'it has no scheme'],
    ['http://127.0.0.1:6379', 'the scheme http:// is not supported'],
    ['redis://', 'the host is missing'],
    ['redis://h:99999', 'it is not a URL'],
    ['redis://h:0', 'port 0'],
    ['redis://h:1/x', '"/x" is not a database number'],
    ['redis://h:1?db=2', 'query strings'],
  ])('%j is refused: %s', (url, why) => {
    const error = (() => {
      try {
        parseQueueUrl(url);
      } catch (e) {
        return e as { code: string; exitCode: number; message: string };
      }
      throw new Error('accepted');
    })();
    expect(error).toMatchObject({ code: QUEUE_ERROR_CODES.badUrl, exitCode: 2 });
    expect(error.message).toContain(why);
    expect(error.message).toContain('--queue redis://127.0.0.1:6379');
  });

  it('does not echo a password in the error', () => {
    expect(() => parseQueueUrl('redis://u:topsecret@h:1/x')).toThrow(/redis:\/\/u:\*\*\*@h:1\/x/);
    expect(() => parseQueueUrl('redis://u:topsecret@h:1/x')).not.toThrow(/topsecret/);
  });
});
