import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { expectNoSecrets, snapshot } from '../helpers/assertions.js';
import { CLIENT_ID } from '../helpers/provider.js';

const sameOrigin = (env: TestEnv, extra: Record<string, string> = {}) => ({ origin: env.appUrl, 'sec-fetch-site': 'same-origin', ...extra });

describe('G: logout targets (RP-Initiated Logout 1.0)', () => {
  let env: TestEnv;
  let plain: TestEnv;
  beforeAll(async () => {
    env = await createEnv(); // no postLogoutRedirectUri; the provider has `${appUrl}/` registered
    // Explicit endpoints without end_session_endpoint.
    plain = await createEnv({
      redis: env.redis,
      oauth: (p) => ({
        issuer: undefined,
        authorizationEndpoint: `${p.issuer}/auth`,
        tokenEndpoint: `${p.issuer}/token`,
        revocationEndpoint: `${p.issuer}/token/revocation`,
        scope: ['offline_access', 'email'],
      }),
    });
  });
  afterAll(async () => {
    await plain?.close();
    await env?.close();
  });

  const logout = (e: TestEnv, browser: TestBrowser, query = '', headers: Record<string, string> = {}) =>
    browser.request(`${e.appUrl}/oauth/logout${query}`, { method: 'POST', headers: sameOrigin(e, headers) });

  it('G26: postLogoutRedirectUri defaults to the app origin + "/", and the provider accepts it', async () => {
    const { browser } = await env.login();
    const res = await logout(env, browser);
    expect(res.status).toBe(302);
    const target = new URL(res.location!);
    expect(`${target.origin}${target.pathname}`).toBe(`${env.provider.issuer}/session/end`);
    expect(target.searchParams.get('post_logout_redirect_uri')).toBe(`${env.appUrl}/`);
    expect(target.searchParams.get('id_token_hint')).toBeTruthy(); // a full-page redirect may carry the hint
    // The provider accepts the registered value (its confirmation page, not an error).
    const page = await browser.request(target.href);
    expect(page.status).toBe(200);
    expect(page.body).not.toMatch(/invalid_request|post_logout_redirect_uri not registered/);
  });

  it('G27: a JSON logout answers 204 with Logout-Location: the end-session URL with client_id, never a token', async () => {
    const { browser } = await env.login();
    const before = await snapshot(env, browser);
    const res = await logout(env, browser, '', { accept: 'application/json' });
    expect(res.status).toBe(204);
    expect(res.body).toBe('');
    const target = new URL(res.headers.get('logout-location')!);
    expect(`${target.origin}${target.pathname}`).toBe(`${env.provider.issuer}/session/end`);
    expect(target.searchParams.get('client_id')).toBe(CLIENT_ID);
    expect(target.searchParams.get('post_logout_redirect_uri')).toBe(`${env.appUrl}/`);
    expect(target.searchParams.has('id_token_hint')).toBe(false);
    expectNoSecrets(env, before.secrets, [res.body, JSON.stringify(Object.fromEntries(res.headers))]);
    // The provider accepts client_id without id_token_hint.
    const page = await browser.request(target.href);
    expect(page.status).toBe(200);
    expect(page.body).not.toMatch(/invalid_request/);
  });

  it('G28: without an end-session endpoint, Logout-Location is the validated returnTo (or "/")', async () => {
    const { browser } = await plain.login();
    const before = await snapshot(plain, browser);
    const res = await logout(plain, browser, `?returnTo=${encodeURIComponent('/goodbye?x=1')}`, { 'x-requested-with': 'XMLHttpRequest' });
    expect(res.status).toBe(204);
    expect(res.headers.get('logout-location')).toBe('/goodbye?x=1');
    expectNoSecrets(plain, before.secrets, [res.body, JSON.stringify(Object.fromEntries(res.headers))]);

    const other = (await plain.login()).browser;
    const offsite = await logout(plain, other, `?returnTo=${encodeURIComponent('https://evil.example/')}`, { accept: 'application/json' });
    expect(offsite.status).toBe(204);
    expect(offsite.headers.get('logout-location')).toBe('/');
  });

  it('G29: a page logout without an end-session endpoint still redirects to returnTo (unchanged)', async () => {
    const { browser } = await plain.login();
    const res = await logout(plain, browser, `?returnTo=${encodeURIComponent('/bye')}`);
    expect(res.status).toBe(302);
    expect(new URL(res.location!, plain.appUrl).href).toBe(`${plain.appUrl}/bye`);
    expect(res.headers.get('logout-location')).toBeNull();
  });
});
