import { describe, expect, it } from 'vitest';
import { parseEndpoint, parseRemoteUrl } from './location.ts';

describe('parseRemoteUrl', () => {
  it('splits bucket and prefix, dropping one trailing slash', () => {
    expect(parseRemoteUrl('s3://my-bucket')).toEqual({ url: 's3://my-bucket', bucket: 'my-bucket', prefix: '' });
    expect(parseRemoteUrl('s3://my-bucket/')).toEqual({ url: 's3://my-bucket', bucket: 'my-bucket', prefix: '' });
    expect(parseRemoteUrl('S3://data.team-1/graft/mnist/')).toEqual({ url: 's3://data.team-1/graft/mnist', bucket: 'data.team-1', prefix: 'graft/mnist' });
  });

  it.each([
    ['', /empty/],
    ['my-bucket/x', /no scheme/],
    ['gs://my-bucket', /only s3:\/\//],
    ['file:///tmp/x', /only s3:\/\//],
    ['s3://', /bucket name is missing/],
    ['s3:///prefix', /bucket name is missing/],
    ['s3://My_Bucket', /not a valid bucket name/],
    ['s3://ab', /not a valid bucket name/],
    ['s3://a..b', /not a valid bucket name/],
    ['s3://bucket/a//b', /empty segment/],
    ['s3://bucket/a/../b', /"\.\." segment/],
    ['s3://bucket/./b', /"\." segment/],
    ['s3://bucket/a\\b', /backslash/],
    ['s3://bucket/a\nb', /control character/],
    ['s3://bucket/a?versionId=1', /query strings/],
  ])('refuses %j with exit code 2', (url, why) => {
    let error: unknown;
    try {
      parseRemoteUrl(url);
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: 'REMOTE_BAD_URL', exitCode: 2 });
    expect((error as Error).message).toMatch(why);
    expect((error as Error).message).toContain('s3://BUCKET/PREFIX');
  });
});

describe('parseEndpoint', () => {
  it('accepts http(s) base URLs', () => {
    expect(parseEndpoint('http://127.0.0.1:9000')).toBe('http://127.0.0.1:9000');
    expect(parseEndpoint('https://acct.r2.example/')).toBe('https://acct.r2.example');
  });

  it.each(['127.0.0.1:9000', 'ftp://host', 'http://host/?x=1', 'http://user:pw@host', 'not a url'])('refuses %j with exit code 2', (endpoint) => {
    expect(() => parseEndpoint(endpoint)).toThrow(expect.objectContaining({ code: 'REMOTE_BAD_ENDPOINT', exitCode: 2 }));
  });
});
