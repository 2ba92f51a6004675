import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RecordCipher } from '../../lib/token-record.js';
import { TestBrowser } from '../helpers/browser.js';
import { ENCRYPTION_KEY, createEnv, type TestEnv } from '../helpers/env.js';
import { CLIENT_ID, CLIENT_SECRET } from '../helpers/provider.js';
import { expectNoSecrets } from '../helpers/assertions.js';

/**
 * Issue 9, item 9: `issuer` with a trailing slash against oidc-provider (whose issuer has none) used to
 * start cleanly and then fail every login with a 400 `issuer mismatch` and nothing logged.
 */
describe('J: a trailing slash on `issuer`, against a real provider (issue 9 item 9)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createEnv({ oauth: (p) => ({ issuer: `${p.issuer}/` }) });
  });
  afterAll(async () => {
    await env?.close();
  });

  it('J9: startup warns once, naming the exact issuer to configure', () => {
    const warnings = env.logger.lines.filter((l) => l.startsWith('warn') && l.includes('issuer'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`\`issuer: '${env.provider.issuer}'\``);
  });

  it('J10: a full login succeeds (iss at the callback, ID token), the API call works, and a second tab logs in too', async () => {
    const { browser, callback } = await env.login(new TestBrowser(), { returnTo: '/profile' });
    expect(callback.status).toBe(302);
    expect(new URL(callback.location!, env.appUrl).pathname).toBe('/profile');
    const me = await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body).sub).toBe('alice');
    const profile = await browser.request(`${env.appUrl}/profile`, { headers: { accept: 'application/json' } });
    expect(JSON.parse(profile.body).user.sub).toBe('alice');
    expectNoSecrets(env, [CLIENT_SECRET], [callback.body, me.body]);
  });

  it('J11: token records stay bound to the issuer string as configured, so records written by earlier versions still open', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const raw = (await env.rawRecord(sid))!;
    const asConfigured = new RecordCipher([ENCRYPTION_KEY], { issuer: `${env.provider.issuer}/`, clientId: CLIENT_ID });
    expect((await asConfigured.open(sid, raw)).access_token).toEqual(expect.any(String));
    // A record sealed the way an earlier version sealed it (same AAD) is used as is.
    const record = await asConfigured.open(sid, raw);
    await env.tokenStore.set(sid, await asConfigured.seal(sid, { ...record, version: record.version + 1 }), 3600_000);
    const me = await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(me.status).toBe(200);
  });
});
