import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { expectNoSecrets, privateKeySecrets } from '../helpers/assertions.js';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const old = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signing = { ...ec.privateKey.export({ format: 'jwk' }), kid: 'k-2026' } as Record<string, unknown>;
const previous = { ...old.privateKey.export({ format: 'jwk' }), kid: 'k-2025' } as Record<string, unknown>;

const json = { accept: 'application/json' };
let jwt: TestEnv;
let hmac: TestEnv;

beforeAll(async () => {
  [jwt, hmac] = await Promise.all([
    createEnv({
      // The provider fetches the client's keys from the app's JWKS route.
      provider: (appUrl) => ({ tokenEndpointAuthMethod: 'private_key_jwt', clientJwksUri: `${appUrl}/oauth/jwks` }),
      oauth: {
        tokenEndpointAuthMethod: 'private_key_jwt',
        clientSecret: undefined,
        clientAssertionKey: { keys: [signing, previous] },
        tokenCacheMs: 0,
      },
    }),
    createEnv({ provider: { tokenEndpointAuthMethod: 'client_secret_jwt' }, oauth: { tokenEndpointAuthMethod: 'client_secret_jwt' } }),
  ]);
});
afterAll(async () => {
  await Promise.all([jwt?.close(), hmac?.close()]);
});

async function expire(env: TestEnv, browser: TestBrowser) {
  const sid = env.sid(browser);
  const record = (await env.readRecord(sid))!;
  await env.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5, updated_at: Math.floor(Date.now() / 1000) - 3600 });
}

describe('N: private_key_jwt and client_secret_jwt against oidc-provider (rules 3, 18)', () => {
  it('N6: private_key_jwt (first key of a rotating set signs, no clientSecret): login, API call, refresh, logout', async () => {
    const { browser, callback } = await jwt.login();
    expect(callback.status).toBe(302);
    expect(jwt.provider.counters.codeGrants).toBe(1);
    expect((await browser.request(`${jwt.appUrl}/api/me`, { headers: json })).status).toBe(200);
    await expire(jwt, browser);
    const before = jwt.provider.counters.refreshGrants;
    expect((await browser.request(`${jwt.appUrl}/api/me`, { headers: json })).status).toBe(200);
    expect(jwt.provider.counters.refreshGrants - before).toBe(1);
    const out = await browser.request(`${jwt.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: jwt.appUrl } });
    expect(out.status).toBe(302);
    expect(jwt.provider.counters.revocations).toBeGreaterThan(0);
    expectNoSecrets(jwt, privateKeySecrets([signing, previous]), [JSON.stringify(browser.seen)]);
  });

  it('N7: the JWKS route serves the public keys of the set, nothing private', async () => {
    const res = await new TestBrowser().request(`${jwt.appUrl}/oauth/jwks`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/jwk-set\+json/);
    const body = JSON.parse(res.body) as { keys: Array<Record<string, unknown>> };
    expect(body.keys.map((k) => k.kid)).toEqual(['k-2026', 'k-2025']);
    expect(body.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', x: signing.x, y: signing.y });
    expect(body.keys[1]).toMatchObject({ kty: 'RSA', alg: 'RS256', n: previous.n, e: previous.e });
    for (const k of body.keys) for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k[m]).toBeUndefined();
    expectNoSecrets(jwt, privateKeySecrets([signing, previous]), [res.body]);
    // Without private_key_jwt there is nothing to publish.
    expect((await new TestBrowser().request(`${hmac.appUrl}/oauth/jwks`)).status).toBe(404);
  });

  it('N8: client_secret_jwt: login, API call, refresh', async () => {
    const { browser, callback } = await hmac.login();
    expect(callback.status).toBe(302);
    await expire(hmac, browser);
    expect((await browser.request(`${hmac.appUrl}/api/me`, { headers: json })).status).toBe(200);
    expect(hmac.provider.counters.refreshGrants).toBe(1);
  });
});
