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
});
