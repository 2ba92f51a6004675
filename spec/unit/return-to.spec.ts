import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { safeReturnTo } from '../../lib/return-to.js';

const ORIGIN = 'https://app.example.com';

/** The property rule 9 demands of every output: a plain path that any URL parser resolves to our origin. */
function expectSameOriginPath(out: string) {
  expect(out.startsWith('/')).toBe(true);
  expect(out.startsWith('//')).toBe(false);
  expect(out).not.toMatch(/[\\\u0000-\u0020\u007f]/);
  expect(new URL(out, ORIGIN).origin).toBe(ORIGIN);
  // Resolved against a different base too: still relative to whatever origin serves it.
  expect(new URL(out, 'http://other.test').origin).toBe('http://other.test');
}

const payloads = [
  '//evil.com',
  '///evil.com',
  '////evil.com',
  '/\\evil.com',
  '\\\\evil.com',
  '/\\/evil.com',
  '\\/evil.com',
  'https://evil.com',
  'http:evil.com',
  'http:/evil.com',
  'https:\\\\evil.com',
  'javascript:alert(1)',
  'JaVaScRiPt:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  '/\t/evil.com',
  '/\n/evil.com',
  '/\r\n/evil.com',
  ' //evil.com',
  '\t//evil.com',
  '/ /evil.com',
  '/%09/evil.com',
  '/%2F/evil.com',
  '/%2f%2fevil.com',
  '/%5Cevil.com',
  '/%255Cevil.com',
  '%2F%2Fevil.com',
  '/.//evil.com',
  '/./\\evil.com',
  '/..//evil.com',
  '/a/..//evil.com',
  '/a/../../..//evil.com',
  '/.%2F/evil.com',
  '//evil.com@app.example.com',
  '/@evil.com',
  'https://app.example.com@evil.com',
  'https://app.example.com.evil.com',
  '//app.example.com.evil.com',
  'https://evil.com/https://app.example.com',
  '/\u3002evil.com',
  '//evil\u3002com',
  '/\uff0f\uff0fevil.com',
  '\u2215\u2215evil.com',
  '/\u2028/evil.com',
  '/\u00a0/evil.com',
  '/\ufeff/evil.com',
  '/\u200b/evil.com',
  '\u0000//evil.com',
  '/profile\r\nSet-Cookie: a=b',
  '/%0d%0aSet-Cookie:a=b',
  '//%09evil.com',
  '/%5c%5cevil.com',
  '/x'.repeat(2000),
  '',
];

describe('H: returnTo is same-origin only (rule 9)', () => {
  it.each(payloads.map((p) => [JSON.stringify(p).slice(0, 60), p]))('H1: %s stays on our origin', (_name, payload) => {
    const out = safeReturnTo(payload, ORIGIN);
    expectSameOriginPath(out);
    // Nothing that names another host survives as a host.
    expect(new URL(out, ORIGIN).host).toBe('app.example.com');
  });

  it('H2: ordinary paths with query and fragment are kept', () => {
    expect(safeReturnTo('/profile', ORIGIN)).toBe('/profile');
    expect(safeReturnTo('/a/b?x=1&y=%2F#frag', ORIGIN)).toBe('/a/b?x=1&y=%2F#frag');
    expect(safeReturnTo('/caf\u00e9', ORIGIN)).toBe('/caf%C3%A9');
  });

  it('H3: non-strings and oversize values fall back to /', () => {
    expect(safeReturnTo(undefined, ORIGIN)).toBe('/');
    expect(safeReturnTo(['/a'], ORIGIN)).toBe('/');
    expect(safeReturnTo({ toString: () => '/a' }, ORIGIN)).toBe('/');
    expect(safeReturnTo(`/${'a'.repeat(3000)}`, ORIGIN)).toBe('/');
  });

  it('H4: the rule holds for 20,000 random strings built from the characters attacks use', () => {
    const alphabet = [
      '/',
      '\\',
      '.',
      ':',
      '@',
      '%',
      '2',
      'f',
      'F',
      '5',
      'c',
      '0',
      '9',
      'a',
      '\t',
      '\n',
      '\r',
      ' ',
      '?',
      '#',
      'e',
      'v',
      'i',
      'l',
      '\u3002',
      '\uff0f',
      '\u2215',
      '\u00a0',
      'h',
      't',
      'p',
      's',
      '/',
      '/',
      '%2F',
      '%5C',
      '%09',
      '//',
      'evil.com',
      'http:',
    ];
    const bytes = randomBytes(20000 * 12);
    for (let i = 0; i < 20000; i++) {
      let s = '';
      const len = 1 + (bytes[i * 12]! % 11);
      for (let j = 1; j <= len; j++) s += alphabet[bytes[i * 12 + j]! % alphabet.length];
      const out = safeReturnTo(s, ORIGIN);
      expectSameOriginPath(out);
    }
  });
});
