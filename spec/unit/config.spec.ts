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

function configError(options: unknown): ConfigError {
  try {
    const mw = oauth(options as OAuthOptions);
    mw.close();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('config_invalid');
    // J: a secret is never echoed in a configuration message.
    expect((err as Error).message).not.toContain(SECRET);
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
    ['missing apiBaseUrl', (o) => ({ ...o, apiBaseUrl: undefined }), /`apiBaseUrl` is required/],
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

  it('J: http is accepted on localhost, and a valid configuration starts', () => {
    const mw = oauth({ ...base(), issuer: 'http://localhost:9999', apiBaseUrl: ['http://127.0.0.1:1', 'https://api.example.com'] });
    expect(typeof mw).toBe('function');
    mw.close();
  });
});
