import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from '@jest/globals';
import { mapPath } from '../../lib/proxy/path.js';
import { GuardedBody, TooLargeError, tokenForms } from '../../lib/proxy/redact.js';

describe('K: path mapping (rule 16)', () => {
  it('K20: suffixes map under the base path; escapes in any encoding are refused', () => {
    expect(mapPath('/v1', '/users/me')).toBe('/v1/users/me');
    expect(mapPath('/v1', '/')).toBe('/v1/');
    expect(mapPath('/v1', '')).toBe('/v1');
    expect(mapPath('', '')).toBe('/');
    expect(mapPath('', '/a/b/')).toBe('/a/b/');
    expect(mapPath('/v1', '/caf%C3%A9')).toBe('/v1/caf%C3%A9');
    expect(mapPath('/v1', '/a..b/c.d')).toBe('/v1/a..b/c.d');
    for (const p of [
      '/..',
      '/.',
      // Path parameters and trailing dots or spaces that some servers normalise into dot segments.
      '/..;/admin',
      '/.;/x',
      '/%2e%2e;/x',
      '/..%3b/admin',
      '/..%20/x',
      '/.../x',
      '/a/..',
      '/%2e%2e',
      '/%2e',
      '/.%2E',
      '/%252e%252e',
      '/a%2fb',
      '/a%2F..',
      '/a%5cb',
      '/a\\b',
      '//x',
      '/a//b',
      '/%00',
      '/a%7f',
      '/%zz',
      '/%c0%ae',
      'x',
      '/a b',
      '/\u0000',
    ]) {
      expect([p, mapPath('/v1', p)]).toEqual([p, undefined]);
    }
  });
});

async function run(chunks: Buffer[], max: number, token?: string): Promise<string> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    new GuardedBody(max, token ? tokenForms(token) : undefined),
    new Writable({
      write(c, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out).toString();
}

describe('K: streaming body guard', () => {
  it('K21: the token is masked wherever the chunk boundaries fall, the length is kept, and the cap holds', async () => {
    const token = 'eyJhbGciOi.J9/ab+c=';
    const text = `a${token}b${encodeURIComponent(token)}c${token.replaceAll('/', '\\/')}${token}`;
    for (let size = 1; size <= text.length; size++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < text.length; i += size) chunks.push(Buffer.from(text.slice(i, i + size)));
      const masked = await run(chunks, 1e6, token);
      expect(masked.length).toBe(text.length);
      expect(masked.replace(/\*+/g, '*')).toBe('a*b*c*');
    }
    await expect(run([Buffer.alloc(10), Buffer.alloc(10)], 15)).rejects.toThrow(TooLargeError);
    expect(await run([Buffer.from('plain')], 5)).toBe('plain');
  });
});
