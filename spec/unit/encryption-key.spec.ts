import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { resolveConfig } from '../../lib/config.js';
import { ConfigError, MemoryTokenStore } from '../../lib/index.js';
import type { OAuthOptions } from '../../lib/types.js';

/** Issue 9, item 11: `encryptionKey` needs an estimated 128 bits of entropy. */
const base: OAuthOptions = {
  issuer: 'https://idp.example.com',
  clientId: 'client',
  clientSecret: 'secret',
  redirectUri: 'https://app.example.com/oauth/callback',
  apiBaseUrl: 'https://api.example.com',
  tokenStore: new MemoryTokenStore(),
  encryptionKey: 'placeholder',
};

/** The ConfigError (or undefined) resolveConfig gives for these keys. */
function check(encryptionKey: string | string[]): ConfigError | undefined {
  try {
    resolveConfig({ ...base, encryptionKey });
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
}

const WEAK: Array<[string, string]> = [
  ['a passphrase of words, repeated', 'correct horse battery staple correct horse battery staple'],
  ['a passphrase of words, run together', 'thisismysupersecretencryptionkeyforproduction'],
  ['a passphrase in camel case', 'ThisIsMySuperSecretEncryptionKeyForProductionUse'],
  ['a passphrase with digits and symbols', 'Summer2024!Summer2024!Winter2025!Winter2025!'],
  ['a diceware-style passphrase of six words', 'plaza-tundra-mosaic-violin-garnet-orbit'],
  ['a repeated 4-character pattern', 'abcdabcdabcdabcdabcdabcdabcdabcdabcdabcd'],
  ['a repeated word', 'passwordpasswordpasswordpasswordpassword'],
  ['a repeated random-looking chunk', 'x7Q!k9Zpx7Q!k9Zpx7Q!k9Zpx7Q!k9Zpx7Q!k9Zp'],
  ['one character', 'a'.repeat(48)],
  ['an alphabet run', 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'],
  ['a digit run', '0123456789012345678901234567890123456789'],
  ['keyboard rows', 'qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjkl'],
  ['keyboard rows with shifts', '1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/'],
  ["the repository's old test key", 'test-encryption-key-0123456789-abcdefghijklmnop'],
  ['the old config-spec key', 'kkkkabcdefghijklmnopqrstuvwxyz0123456789'],
  ['an alphabet and digits', 'abcdefghijklmnopqrstuvwxyz0123456789'],
  ['a reversed alphabet', 'zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA'],
  ['a repeated hex word', 'deadbeefdeadbeefdeadbeefdeadbeef'],
];

describe('J: encryptionKey entropy (issue 9 item 11)', () => {
  for (const [label, key] of WEAK) {
    it(`J12: refuses ${label}, naming the option and the fix, never echoing the key`, () => {
      const err = check(key);
      expect(err).toBeDefined();
      expect(err!.message).toMatch(/`encryptionKey` is not random enough/);
      expect(err!.message).toContain('openssl rand -base64 32');
      expect(err!.message.includes(key)).toBe(false);
      // The whole message is the fixed text: nothing of the key in it.
      expect(err!.message).toMatch(
        /^oauth\(\): `encryptionKey` is not random enough \(an estimated \d+ bits, 128 needed: words, repeats and runs are easy to guess\): generate it with `openssl rand -base64 32`\.$/,
      );
    });
  }

  it('J13: names the index of the weak key in a list (rotation)', () => {
    const strong = randomBytes(32).toString('base64');
    const err = check([strong, 'correct horse battery staple correct horse battery staple']);
    expect(err!.message).toMatch(/`encryptionKey\[1\]` is not random enough/);
    expect(err!.message.includes(strong)).toBe(false);
  });

  for (const [format, encode] of [
    ['base64 (openssl rand -base64 32)', (b: Buffer) => b.toString('base64')],
    ['hex (openssl rand -hex 32)', (b: Buffer) => b.toString('hex')],
    ['base64url', (b: Buffer) => b.toString('base64url')],
    ['upper-case hex', (b: Buffer) => b.toString('hex').toUpperCase()],
  ] as const) {
    it(`J14: accepts 1,000 keys of 32 random bytes as ${format}`, () => {
      const refused: string[] = [];
      for (let i = 0; i < 1000; i++) {
        const key = encode(randomBytes(32));
        if (check(key)) refused.push(key);
      }
      expect(refused).toEqual([]);
    });
  }

  it('J15: fixed strong keys used across the repository are accepted', () => {
    for (const key of [
      'ZyfcJAcgS2m4tFMtQvCYm2pR5k7KQv+PKuSp6gxEL0g=',
      'Dj4oXkI3HzxwBTcyzXIEzGiQlWvlrGH4/v58F0P8OGY=',
      '+K72QCdH8p7GF+wfglCA5Uubcvjcx+KDP3vzg8Qk6wU=',
      'j/VbxO3I2nYNnleWS1wrkgRMOiDZgy6aNB+skzJJpZo=',
    ])
      expect(check(key)).toBeUndefined();
  });
});
