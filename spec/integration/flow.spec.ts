import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { CLIENT_SECRET } from '../helpers/provider.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createEnv();
});
afterAll(async () => {
  await env?.close();
});

describe('end to end against oidc-provider (rules 1-7, 12)', () => {
  it('logs in through the real provider pages, calls the API with the user token, and logs out', async () => {
    const { browser, callback } = await env.login(undefined, { returnTo: '/profile?tab=1' });
    expect(callback.status).toBe(302);
    expect(callback.location).toBe(`${env.appUrl}/profile?tab=1`);
    expect(env.provider.counters.codeGrants).toBe(1);

    const profile = await browser.request(`${env.appUrl}/profile`);
    expect(profile.status).toBe(200);
    const body = JSON.parse(profile.body);
    expect(body.user).toMatchObject({ sub: 'alice', email: 'alice@example.test' });
    expect(body.api).toMatchObject({ sub: 'alice' });

    const sid = env.sid(browser);
    const record = await env.readRecord(sid);
    expect(record?.refresh_token).toBeTruthy();
    // The record in Redis is a JWE, not plaintext.
    const raw = (await env.rawRecord(sid))!;
    expect(raw).not.toContain(record!.access_token);
    expect(raw.split('.')).toHaveLength(5);

    const out = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: env.appUrl } });
    expect(out.status).toBe(302);
    expect(await env.rawRecord(sid)).toBeNull();
    expect(await env.provider.accessTokenValid(record!.access_token)).toBe(false);
    const after = await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(after.status).toBe(401);
    expect(JSON.parse(after.body)).toEqual({ error: 'login_required' });

    // G: no token or secret in any response body, header or log line of the whole flow.
    const haystack = JSON.stringify(browser.seen) + env.logger.lines.join('\n');
    for (const secret of [record!.access_token, record!.refresh_token!, CLIENT_SECRET, encodeURIComponent(CLIENT_SECRET)]) {
      expect(haystack).not.toContain(secret);
    }
  });

  it('rule 1: every login has a fresh 256-bit state, PKCE S256 and a nonce', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const res = await new TestBrowser().request(`${env.appUrl}/oauth/login`);
      const url = new URL(res.location!);
      const state = url.searchParams.get('state')!;
      expect(Buffer.from(state, 'base64url').length).toBeGreaterThanOrEqual(32);
      expect(url.searchParams.get('code_challenge_method')).toBe('S256');
      expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(url.searchParams.get('nonce')!, 'base64url').length).toBeGreaterThanOrEqual(32);
      expect(url.searchParams.get('redirect_uri')).toBe(`${env.appUrl}/oauth/callback`);
      expect(res.headers.get('cache-control')).toBe('no-store');
      for (const v of [state, url.searchParams.get('nonce')!, url.searchParams.get('code_challenge')!]) {
        expect(seen.has(v)).toBe(false);
        seen.add(v);
      }
    }
  });
});
