import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { expectNoSecrets } from '../helpers/assertions.js';
import type { OAuthEventMap } from '../../lib/index.js';

let env: TestEnv;
const events: Array<{ name: keyof OAuthEventMap; payload: unknown }> = [];

beforeAll(async () => {
  // A short deadline keeps the hang tests quick, with room for a loaded CI machine.
  env = await createEnv({ oauth: { httpTimeout: 2500 } });
  for (const name of ['login', 'refresh', 'refresh_failed', 'logout', 'login_failed'] as const) {
    env.auth.events.on(name, (payload: unknown) => events.push({ name, payload }));
  }
});
afterAll(async () => {
  await env?.close();
});
afterEach(() => {
  env.provider.setTokenFault(undefined);
  env.provider.setTokenRewrite(undefined);
  env.provider.setPathFault('/token/revocation', undefined);
});

const json = { accept: 'application/json' };

/** Marks the stored access token as expired (as if its lifetime had passed), keeping everything else. */
async function expireAccessToken(browser: TestBrowser, secondsLeft = -5) {
  const sid = env.sid(browser);
  const record = (await env.readRecord(sid))!;
  await env.writeRecord(sid, {
    ...record,
    expires_at: Math.floor(Date.now() / 1000) + secondsLeft,
    updated_at: Math.floor(Date.now() / 1000) - 3600,
  });
  return record;
}

const refreshes = () => env.provider.counters.refreshGrants + env.provider.counters.refreshErrors;

describe('E: refresh in one process (rule 8)', () => {
  it('E1: 50 concurrent calls with an expired token make exactly one refresh; all succeed; the user stays logged in', async () => {
    const { browser } = await env.login();
    const old = await expireAccessToken(browser);
    const before = refreshes();
    const results = await Promise.all(Array.from({ length: 50 }, () => browser.request(`${env.appUrl}/api/me`, { headers: json })));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(refreshes() - before).toBe(1);
    const record = (await env.readRecord(env.sid(browser)))!;
    expect(record.access_token).not.toBe(old.access_token);
    // Rotation: a new refresh token replaced the old one.
    expect(record.refresh_token).not.toBe(old.refresh_token);
    expect(record.version).toBe(old.version + 1);
    const again = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(again.status).toBe(200);
    expect(refreshes() - before).toBe(1);
    const refreshEvent = events.filter((e) => e.name === 'refresh').at(-1)!.payload as { durationMs: number; session: string };
    expect(refreshEvent.durationMs).toBeGreaterThanOrEqual(0);
    expect(refreshEvent.session).not.toContain(env.sid(browser));
  });

  it('E2: proactive refresh happens inside the leeway, before expiry', async () => {
    const { browser } = await env.login();
    const old = await expireAccessToken(browser, 30); // 30 s left, leeway 60 s
    const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(res.status).toBe(200);
    expect((await env.readRecord(env.sid(browser)))!.access_token).not.toBe(old.access_token);
  });

  it('E3: a refresh response without refresh_token keeps the old one; without id_token keeps the old one', async () => {
    const { browser } = await env.login();
    const old = await expireAccessToken(browser);
    env.provider.setTokenRewrite(({ refresh_token: _r, id_token: _i, ...rest }) => rest, 'refresh_token');
    const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(res.status).toBe(200);
    const record = (await env.readRecord(env.sid(browser)))!;
    expect(record.access_token).not.toBe(old.access_token);
    expect(record.refresh_token).toBe(old.refresh_token);
    expect(record.id_token).toBe(old.id_token);
  });

  it('E4: an ID token for another subject on refresh ends the login', async () => {
    const { browser } = await env.login();
    await expireAccessToken(browser);
    const forged = await env.provider.signIdToken({ sub: 'mallory' });
    env.provider.setTokenRewrite((body) => ({ ...body, id_token: forged }), 'refresh_token');
    const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toEqual({ error: 'login_required' });
    expect(await env.rawRecord(env.sid(browser))).toBeNull();
    expect(events.some((e) => e.name === 'refresh_failed' && (e.payload as { reason: string }).reason === 'sub_changed')).toBe(true);
  });

  it('E5: invalid_grant (refresh token revoked) ends the login: 401 JSON, redirect for pages, record deleted', async () => {
    const { browser } = await env.login();
    const old = await expireAccessToken(browser);
    const rt = await env.provider.provider.RefreshToken.find(old.refresh_token!);
    await rt!.destroy();
    const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toEqual({ error: 'login_required' });
    expect(await env.rawRecord(env.sid(browser))).toBeNull();
    const page = await browser.request(`${env.appUrl}/profile`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(302);
    expect(page.location).toContain('/oauth/login');
    expect(events.some((e) => e.name === 'refresh_failed' && (e.payload as { reason: string }).reason === 'invalid_grant')).toBe(true);
  });

  it('E6: a 500 from the token endpoint keeps the tokens: 503 with Retry-After while expired, then recovery', async () => {
    const { browser } = await env.login();
    await expireAccessToken(browser);
    const raw = await env.rawRecord(env.sid(browser));
    env.provider.setTokenFault({ kind: 'status', status: 500, body: 'down', contentType: 'text/plain' }, 'refresh_token');
    const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
    expect(res.setCookies.filter((c) => c.startsWith('connect.sid='))).toEqual([]);
    expect(await env.rawRecord(env.sid(browser))).toBe(raw);
    env.provider.setTokenFault(undefined);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
  });

  it('E7: a hanging token endpoint gives 503 within the deadline and keeps the tokens', async () => {
    const { browser } = await env.login();
    await expireAccessToken(browser);
    const raw = await env.rawRecord(env.sid(browser));
    env.provider.setTokenFault({ kind: 'hang' }, 'refresh_token');
    const started = Date.now();
    const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(res.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await env.rawRecord(env.sid(browser))).toBe(raw);
  });

  it('E8: a transient failure while the current token is still valid uses the current token', async () => {
    const { browser } = await env.login();
    const old = await expireAccessToken(browser, 20); // inside the leeway, not expired
    env.provider.setTokenFault({ kind: 'status', status: 502, body: 'bad gateway', contentType: 'text/plain' }, 'refresh_token');
    const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(res.status).toBe(200);
    expect((await env.readRecord(env.sid(browser)))!.access_token).toBe(old.access_token);
  });

  it('E9: race recovery: invalid_grant after another writer rotated the record adopts the newer tokens', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const old = await expireAccessToken(browser);
    // While our refresh is at the provider, "another process" finishes its own refresh and writes fresh tokens.
    const fresh = {
      ...old,
      access_token: old.access_token,
      expires_at: Math.floor(Date.now() / 1000) + 3600,
      version: old.version + 1,
      updated_at: Math.floor(Date.now() / 1000),
    };
    env.provider.setTokenFault(
      { kind: 'status', status: 400, body: JSON.stringify({ error: 'invalid_grant' }), before: () => env.writeRecord(sid, fresh) },
      'refresh_token',
    );
    const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(res.status).toBe(200);
    expect((await env.readRecord(sid))!.version).toBe(fresh.version);
  });

  it("E23: a request waiting for another process's refresh reads the record often at first, tries the lock rarely, and uses the holder's tokens", async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const old = await expireAccessToken(browser);
    const before = refreshes();
    const hits = env.api.authorizations.length;
    // "Another process" holds the lock and writes its refreshed record 600 ms from now.
    expect(await env.tokenStore.lock(sid, 'another-process', 10_000)).toBe(true);
    const store = env.tokenStore;
    const { get, lock, lockAndGet } = store;
    let reads = 0;
    let locks = 0;
    store.get = (key: string) => (reads++, get.call(store, key));
    // RedisTokenStore takes the lock with lockAndGet (the record comes with it once taken).
    store.lock = (key: string, owner: string, ttlMs: number) => (locks++, lock.call(store, key, owner, ttlMs));
    store.lockAndGet = (key: string, owner: string, ttlMs: number) => (locks++, lockAndGet!.call(store, key, owner, ttlMs));
    const fresh = { ...old, expires_at: Math.floor(Date.now() / 1000) + 3600, version: old.version + 1, updated_at: Math.floor(Date.now() / 1000) };
    const holder = new Promise((resolve) => setTimeout(resolve, 600)).then(() => env.writeRecord(sid, fresh));
    try {
      const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
      expect(res.status).toBe(200);
    } finally {
      store.get = get;
      store.lock = lock;
      store.lockAndGet = lockAndGet;
      await holder;
      await env.tokenStore.unlock(sid, 'another-process');
    }
    // The holder's tokens were used, and nothing was refreshed or lost.
    expect(refreshes() - before).toBe(0);
    expect(env.api.authorizations.slice(hits).map((a) => a.authorization)).toEqual([`Bearer ${fresh.access_token}`]);
    expect((await env.readRecord(sid))!.version).toBe(fresh.version);
    // 600 ms of waiting: reads every 2-8 ms for the first 250 ms, then slower; the lock once at first and then
    // about every 100 ms (a lock attempt per read would be dozens).
    expect(locks).toBeGreaterThanOrEqual(2);
    expect(locks).toBeLessThanOrEqual(10);
    // (Reads every 100 ms throughout would be about 7.)
    expect(reads).toBeGreaterThanOrEqual(8);
    expect(reads).toBeLessThanOrEqual(60);
  });
});

describe('E: upstream 401 before expiry (rule 8)', () => {
  it('E10: a GET gets one refresh and one retry', async () => {
    const { browser } = await env.login();
    const old = (await env.readRecord(env.sid(browser)))!;
    await (await env.provider.provider.AccessToken.find(old.access_token))!.destroy();
    const before = refreshes();
    const apiHits = env.api.authorizations.length;
    const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(res.status).toBe(200);
    expect(refreshes() - before).toBe(1);
    expect(env.api.authorizations.length - apiHits).toBe(2);
  });

  it('E11: a POST (not idempotent) gets the 401 without a replay; the token is refreshed for the next call', async () => {
    const { browser } = await env.login();
    let old = (await env.readRecord(env.sid(browser)))!;
    for (const route of ['/api/stream-post', '/api/json-post']) {
      old = (await env.readRecord(env.sid(browser)))!;
      await (await env.provider.provider.AccessToken.find(old.access_token))!.destroy();
      const apiHits = env.api.authorizations.length;
      const res = await browser.request(`${env.appUrl}${route}`, { method: 'POST', headers: json });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toEqual({ error: 'upstream', status: 401 });
      expect(env.api.authorizations.length - apiHits).toBe(1);
    }
    expect((await env.readRecord(env.sid(browser)))!.access_token).not.toBe(old.access_token);
    expect((await browser.request(`${env.appUrl}/api/json-post`, { method: 'POST', headers: json })).status).toBe(200);
  });

  it('E12: a PUT with a streamed body is not replayed (the stream is spent): the 401 comes back', async () => {
    const { browser } = await env.login();
    const old = (await env.readRecord(env.sid(browser)))!;
    await (await env.provider.provider.AccessToken.find(old.access_token))!.destroy();
    const apiHits = env.api.authorizations.length;
    const res = await browser.request(`${env.appUrl}/api/stream-put`, { method: 'POST', headers: json });
    expect(res.status).toBe(401);
    expect(env.api.authorizations.length - apiHits).toBe(1);
  });

  it('E13: an API that keeps answering 401 is not retried in a loop', async () => {
    const { browser } = await env.login();
    const before = refreshes();
    const apiHits = env.api.authorizations.length;
    // Every token is refused: destroy each new one as soon as it is issued.
    env.provider.setTokenRewrite((body) => ({ ...body, access_token: 'not-a-real-token' }), 'refresh_token');
    const old = (await env.readRecord(env.sid(browser)))!;
    await (await env.provider.provider.AccessToken.find(old.access_token))!.destroy();
    const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(res.status).toBe(401);
    expect(refreshes() - before).toBe(1);
    expect(env.api.authorizations.length - apiHits).toBe(2);
  });
});

describe('G/E: logout with revocation, events (rules 7, 8)', () => {
  it('E14: logout revokes at the provider; the refresh token no longer works', async () => {
    const { browser } = await env.login();
    const record = (await env.readRecord(env.sid(browser)))!;
    const res = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: env.appUrl } });
    expect(res.status).toBe(302);
    expect(await env.provider.provider.RefreshToken.find(record.refresh_token!)).toBeUndefined();
    const logout = events.filter((e) => e.name === 'logout').at(-1)!.payload as { revoked: boolean };
    expect(logout.revoked).toBe(true);
  });

  it('E15: revocation endpoint down: logout still completes locally', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    env.provider.setPathFault('/token/revocation', { kind: 'hang' });
    const started = Date.now();
    const res = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: env.appUrl } });
    expect(res.status).toBe(302);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await env.rawRecord(sid)).toBeNull();
    expect(res.setCookies.some((c) => /^connect\.sid=;/.test(c))).toBe(true);
    const logout = events.filter((e) => e.name === 'logout').at(-1)!.payload as { revoked: boolean };
    expect(logout.revoked).toBe(false);
  });

  it('E16: events and logs carry no token', async () => {
    const { browser } = await env.login();
    const record = (await env.readRecord(env.sid(browser)))!;
    await expireAccessToken(browser);
    await browser.request(`${env.appUrl}/api/me`, { headers: json });
    const fresh = (await env.readRecord(env.sid(browser)))!;
    await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: env.appUrl } });
    const secrets = [record.access_token, record.refresh_token!, fresh.access_token, fresh.refresh_token!, record.id_token!];
    expectNoSecrets(env, secrets, [JSON.stringify(events)]);
    expect(events.map((e) => e.name)).toEqual(expect.arrayContaining(['login', 'refresh', 'logout']));
  });

  it('E21: a throwing event listener never breaks a login, a refresh or a logout', async () => {
    const boom = () => {
      throw new Error('listener bug');
    };
    for (const name of ['login', 'refresh', 'logout'] as const) env.auth.events.on(name, boom);
    try {
      const { browser, callback } = await env.login();
      expect(callback.status).toBe(302);
      await expireAccessToken(browser);
      expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
      const out = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: env.appUrl } });
      expect(out.status).toBe(302);
      expect(env.logger.lines.some((l) => l.includes("'login' event listener threw"))).toBe(true);
    } finally {
      for (const name of ['login', 'refresh', 'logout'] as const) env.auth.events.off(name, boom);
    }
  });
});
