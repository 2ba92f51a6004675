import { describe, expect, it } from '@jest/globals';
import { oauth, MemoryTokenStore, ConfigError, type OAuthOptions } from '../../lib/index.js';

const SECRET = 'super-secret-client-value-123';
const base = (): OAuthOptions => ({
  issuer: 'https://accounts.example.com',
  clientId: 'client',
  clientSecret: SECRET,
  redirectUri: 'https://app.example.com/oauth/callback',
  apiBaseUrl: 'https://api.example.com',
  tokenStore: new MemoryTokenStore(),
  encryptionKey: 'j/VbxO3I2nYNnleWS1wrkgRMOiDZgy6aNB+skzJJpZo=',
  logger: { warn: () => {}, error: () => {} },
});

/** The client secret and every encryption key the options hold (the values a message must never echo). */
function secretsOf(options: unknown): string[] {
  const o = (options ?? {}) as { clientSecret?: unknown; encryptionKey?: unknown };
  const keys = Array.isArray(o.encryptionKey) ? o.encryptionKey : [o.encryptionKey];
  return [SECRET, o.clientSecret, ...keys].filter((v): v is string => typeof v === 'string' && v.length > 0);
}

function expectNoSecretIn(message: string, options: unknown): void {
  for (const secret of secretsOf(options)) {
    // The whole value, and any long run of it (a truncated or quoted echo).
    expect(message.includes(secret) ? `echoed: ${secret.slice(0, 4)}…` : 'clean').toBe('clean');
    if (secret.length >= 12) for (let i = 0; i + 8 <= secret.length; i += 4) expect(message).not.toContain(secret.slice(i, i + 8));
  }
}

function configError(options: unknown): ConfigError {
  try {
    const mw = oauth(options as OAuthOptions);
    mw.close();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('config_invalid');
    // J: a secret is never echoed in a configuration message: not the fixture's, not the values these options carry.
    expectNoSecretIn((err as Error).message, options);
    return err as ConfigError;
  }
  throw new Error('expected oauth() to refuse these options');
}

describe('J: configuration is validated at startup (refuse to start)', () => {
  it.each<[string, (o: OAuthOptions) => unknown, RegExp]>([
    ['missing clientId', (o) => ({ ...o, clientId: undefined }), /`clientId` is required/],
    ['missing clientSecret', (o) => ({ ...o, clientSecret: '' }), /`clientSecret` is required/],
    ['short encryption key', (o) => ({ ...o, encryptionKey: 'short-key' }), /`encryptionKey` is too short \(9 characters\).*openssl rand/],
    ['low-entropy encryption key', (o) => ({ ...o, encryptionKey: 'a'.repeat(40) }), /not random enough/],
    [
      'encryption key equal to the client secret',
      (o) => ({ ...o, clientSecret: 'ex8/IFO09PXBu2+UPxfBOBnYOqUq/ytkAUuHZfSAjAk=', encryptionKey: 'ex8/IFO09PXBu2+UPxfBOBnYOqUq/ytkAUuHZfSAjAk=' }),
      /must not be the client secret/,
    ],
    ['missing encryption key', (o) => ({ ...o, encryptionKey: undefined }), /`encryptionKey` is required/],
    [
      'http issuer outside localhost',
      (o) => ({ ...o, issuer: 'http://accounts.example.com' }),
      /`issuer` uses http on accounts\.example\.com.*Use https/,
    ],
    ['http API outside localhost', (o) => ({ ...o, apiBaseUrl: 'http://api.example.com' }), /`apiBaseUrl` uses http/],
    ['unknown option with a suggestion', (o) => ({ ...o, redirectURI: 'x' }), /unknown option `redirectURI`\. Did you mean `redirectUri`\?/],
    ['unknown option without a close match', (o) => ({ ...o, zzzzzzzz: 1 }), /unknown option `zzzzzzzz`\.$/],
    ['missing tokenStore', (o) => ({ ...o, tokenStore: undefined }), /`tokenStore` is required/],
    ['an empty apiBaseUrl list', (o) => ({ ...o, apiBaseUrl: [] }), /`apiBaseUrl` is an empty list/],
    ['relative redirectUri', (o) => ({ ...o, redirectUri: '/oauth/callback' }), /`redirectUri` is not a valid absolute URL/],
    ['redirectUri with a query', (o) => ({ ...o, redirectUri: 'https://app.example.com/cb?x=1' }), /must not have a query/],
    ['unnormalized redirectUri', (o) => ({ ...o, redirectUri: 'https://APP.example.com/cb' }), /normalized form.*https:\/\/app\.example\.com\/cb/],
    ['no issuer and no endpoints', (o) => ({ ...o, issuer: undefined }), /`issuer` is required/],
    ['only one explicit endpoint', (o) => ({ ...o, authorizationEndpoint: 'https://x.example/auth' }), /go together/],
    [
      'openid with explicit endpoints and no jwksUri',
      (o) => ({ ...o, authorizationEndpoint: 'https://x.example/a', tokenEndpoint: 'https://x.example/t', scope: 'openid' }),
      /give `jwksUri`/,
    ],
    ['overriding a protocol parameter', (o) => ({ ...o, authorizationParams: { state: 'fixed' } }), /`authorizationParams\.state` cannot be set/],
    ['bad auth method', (o) => ({ ...o, tokenEndpointAuthMethod: 'none' }), /`tokenEndpointAuthMethod` must be/],
    ['negative timeout', (o) => ({ ...o, httpTimeout: -1 }), /`httpTimeout` must be a number >= 1/],
    ['colliding paths', (o) => ({ ...o, paths: { login: '/oauth/callback' } }), /must differ/],
    [
      'postLogoutRedirectUri that resolves off-site',
      (o) => ({ ...o, postLogoutRedirectUri: '/\\evil.com' }),
      /`postLogoutRedirectUri` must be a plain path/,
    ],
    ['postLogoutRedirectUri on another origin', (o) => ({ ...o, postLogoutRedirectUri: 'https://evil.com/' }), /same origin as `redirectUri`/],
    [
      'accessDeniedRedirect that resolves off-site',
      (o) => ({ ...o, accessDeniedRedirect: '/\\evil.com' }),
      /`accessDeniedRedirect` must be a plain path/,
    ],
    ['accessDeniedRedirect protocol-relative', (o) => ({ ...o, accessDeniedRedirect: '//evil.com' }), /`accessDeniedRedirect` must be a plain path/],
    ['credentials in a URL', (o) => ({ ...o, apiBaseUrl: 'https://user:pass@api.example.com' }), /must not contain credentials/],
  ])('J: %s refuses to start with a message naming the option and the fix', (_name, change, message) => {
    expect(configError(change(base())).message).toMatch(message);
  });

  it.each<[string, (o: OAuthOptions) => OAuthOptions]>([
    ['a short encryption key', (o) => ({ ...o, encryptionKey: 'short-key-X7#q' })],
    ['a low-entropy encryption key', (o) => ({ ...o, encryptionKey: 'abababababababababababababababab-ab' })],
    [
      'an encryption key equal to the client secret',
      (o) => ({ ...o, clientSecret: 'Zq8#mW2!vR5^tY9&uI3*oP6@aS1$dF4%', encryptionKey: 'Zq8#mW2!vR5^tY9&uI3*oP6@aS1$dF4%' }),
    ],
    ['one short key of a rotation list', (o) => ({ ...o, encryptionKey: ['k'.repeat(4) + 'abcdefghijklmnopqrstuvwxyz0123456789', 'tiny-Key-9$'] })],
    ['a key listed twice', (o) => ({ ...o, encryptionKey: ['Qw3rTy-uIoP-aSdF-gHjK-lZxC-vBnM-1234', 'Qw3rTy-uIoP-aSdF-gHjK-lZxC-vBnM-1234'] })],
    ['a bad key next to a client secret', (o) => ({ ...o, clientSecret: 'cl1ent-Secr3t-V4lue-Zz', encryptionKey: 'tiny-Key-9$' })],
  ])('J17: %s is refused without echoing the key or the secret', (_name, change) => {
    const options = change(base());
    const err = configError(options);
    expect(err.message).toMatch(/`encryptionKey/);
    expectNoSecretIn(err.message, options);
    expectNoSecretIn(JSON.stringify({ ...err, stack: err.stack }), options);
  });

  it('J: http is accepted on localhost, and a valid configuration starts', () => {
    const mw = oauth({ ...base(), issuer: 'http://localhost:9999', apiBaseUrl: ['http://127.0.0.1:1', 'https://api.example.com'] });
    expect(typeof mw).toBe('function');
    mw.close();
  });
});

describe('J: option names of other libraries', () => {
  it.each([
    ['callbackURL', 'Did you mean `redirectUri`?'],
    ['baseURL', "Did you mean `redirectUri` (express-openid-connect's baseURL is the app's origin: set redirectUri to `<baseURL>/oauth/callback`)?"],
    ['issuerBaseURL', 'Did you mean `issuer`?'],
    ['secret', "Did you mean `encryptionKey` (and express-session's own `secret`)?"],
    ['clientID', 'Did you mean `clientId`?'],
    ['authorizationURL', 'Did you mean `authorizationEndpoint`?'],
    ['tokenURL', 'Did you mean `tokenEndpoint`?'],
    ['scopes', 'Did you mean `scope`?'],
  ])('J22: `%s` is refused with the option to use instead', (key, hint) => {
    const value = key === 'secret' ? 'a-session-secret-that-must-not-be-echoed' : 'https://app.example.com';
    const err = configError({ ...base(), [key]: value });
    expect(err.message).toBe(`oauth(): unknown option \`${key}\`. ${hint}`);
    expect(err.message).not.toContain(value);
  });

  it('J23: apiBaseUrl may be left out (login only), but not given as an empty list; fetchUserInfo is checked', () => {
    const { apiBaseUrl: _api, ...loginOnly } = base();
    oauth(loginOnly).close();
    expect(configError({ ...base(), apiBaseUrl: [] }).message).toMatch(/`apiBaseUrl` is an empty list/);
    expect(configError({ ...base(), fetchUserInfo: 'yes' }).message).toMatch(/`fetchUserInfo` must be true or false/);
    const explicit = {
      ...base(),
      issuer: undefined,
      authorizationEndpoint: 'https://idp.example.com/auth',
      tokenEndpoint: 'https://idp.example.com/token',
      scope: 'read',
    };
    expect(configError({ ...explicit, fetchUserInfo: true }).message).toMatch(/give `userinfoEndpoint`/);
    oauth({ ...explicit, fetchUserInfo: true, userinfoEndpoint: 'https://idp.example.com/user' }).close();
  });
});
