import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { oauth, MemoryTokenStore, ConfigError, type OAuthOptions } from '../../lib/index.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsaJwk = { ...rsa.privateKey.export({ format: 'jwk' }), kid: 'rsa-1' } as Record<string, unknown>;
const ecJwk = { ...ec.privateKey.export({ format: 'jwk' }), kid: 'ec-1' } as Record<string, unknown>;
const rsaPem = rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;

const base = (): OAuthOptions => ({
  issuer: 'https://accounts.example.com',
  clientId: 'client',
  redirectUri: 'https://app.example.com/oauth/callback',
  apiBaseUrl: 'https://api.example.com',
  tokenStore: new MemoryTokenStore(),
  encryptionKey: 'j/VbxO3I2nYNnleWS1wrkgRMOiDZgy6aNB+skzJJpZo=',
  tokenEndpointAuthMethod: 'private_key_jwt',
  logger: { warn: () => {}, error: () => {} },
});

/** Private members of every key used here: no message may contain any of them. */
const privateParts = [rsaJwk, ecJwk].flatMap((j) =>
  ['d', 'p', 'q', 'dp', 'dq', 'qi'].map((m) => j[m]).filter((v): v is string => typeof v === 'string'),
);
const pemBody = rsaPem.split('\n').filter((l) => l && !l.startsWith('-----'));

function startupError(options: OAuthOptions): string {
  try {
    oauth(options).close();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    for (const s of [...privateParts, ...pemBody]) expect(message.includes(s.slice(0, 16)) ? 'key echoed' : 'clean').toBe('clean');
    return message;
  }
  throw new Error('expected a startup error');
}

describe('N: client authentication, startup (rule 18, family N)', () => {
  it('N1: a public key given as the private key is refused (JWK without d, SPKI PEM)', () => {
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = rsaJwk;
    expect(startupError({ ...base(), clientAssertionKey: pub })).toMatch(/`clientAssertionKey` is a public JWK/);
    const spki = rsa.publicKey.export({ format: 'pem', type: 'spki' }) as string;
    expect(startupError({ ...base(), clientAssertionKey: spki })).toMatch(/`clientAssertionKey` is a public key/);
    expect(startupError({ ...base(), clientAssertionKey: { kty: 'oct', k: 'abc' } })).toMatch(/symmetric key.*client_secret_jwt/);
  });

  it('N2: a key that does not match the algorithm is refused', () => {
    expect(startupError({ ...base(), clientAssertionKey: ecJwk, clientAssertionAlg: 'RS256' })).toMatch(
      /ec prime256v1 key, which does not match the algorithm RS256/,
    );
    expect(startupError({ ...base(), clientAssertionKey: { ...ecJwk, alg: 'ES384' } })).toMatch(/does not match the algorithm ES384/);
    expect(startupError({ ...base(), clientAssertionKey: { ...rsaJwk, alg: 'PS256' }, clientAssertionAlg: 'RS256' })).toMatch(/make them agree/);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'jwk' });
    expect(startupError({ ...base(), clientAssertionKey: small as Record<string, unknown> })).toMatch(/1024-bit RSA key/);
  });

  it('N3: several keys need distinct kids', () => {
    const { kid: _kid, ...noKid } = ecJwk;
    expect(startupError({ ...base(), clientAssertionKey: [rsaJwk, noKid] })).toMatch(/several keys: give each a `kid`/);
    expect(startupError({ ...base(), clientAssertionKey: { keys: [rsaJwk, { ...ecJwk, kid: 'rsa-1' }] } })).toMatch(/same `kid`/);
  });

  it('N4: the secret rules follow the method', () => {
    expect(startupError({ ...base(), clientAssertionKey: undefined })).toMatch(/`clientAssertionKey` is required/);
    expect(startupError({ ...base(), tokenEndpointAuthMethod: 'client_secret_jwt' })).toMatch(
      /`clientSecret` is required with `tokenEndpointAuthMethod: 'client_secret_jwt'`/,
    );
    expect(startupError({ ...base(), tokenEndpointAuthMethod: 'client_secret_jwt', clientSecret: 'short' })).toMatch(/at least 32 characters/);
    expect(
      startupError({ ...base(), tokenEndpointAuthMethod: 'client_secret_basic', clientSecret: 'x'.repeat(40), clientAssertionKey: ecJwk }),
    ).toMatch(/only used with `tokenEndpointAuthMethod: 'private_key_jwt'`/);
    expect(startupError({ ...base(), clientAssertionKey: 'not a pem' })).toMatch(/could not be read as a PEM private key/);
  });

  it('N5: a private key (PEM, JWK or key set) starts without clientSecret', () => {
    for (const key of [rsaPem, ecJwk, { keys: [ecJwk, rsaJwk] }])
      oauth({ ...base(), clientAssertionKey: key as OAuthOptions['clientAssertionKey'] }).close();
  });
});
