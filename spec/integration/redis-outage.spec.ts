import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestBrowser, type BrowserResponse } from '../helpers/browser.js';
import { connectRedis, createEnv, type Redis, type TestEnv } from '../helpers/env.js';
import { startOwnRedis, type OwnRedis } from '../helpers/redis-server.js';

const STORE_TIMEOUT = 400;
/** Every answer during an outage must come within the bound (plus scheduling slack), never hang. */
const BOUND = STORE_TIMEOUT * 3 + 500;

let own: OwnRedis;
let redis: Redis;
let env: TestEnv;

beforeAll(async () => {
  own = await startOwnRedis();
  redis = await connectRedis(own.url);
  env = await createEnv({
    redis,
    // No token cache: these tests need every request to reach Redis.
    oauth: { storeTimeout: STORE_TIMEOUT, tokenCacheMs: 0 },
    routes: (app) => {
      // Redis stops after the session was read and before the token record is.
      app.get('/api/pause-then-call', async (req, res, next) => {
        own.pause();
        try {
          res.json((await req.oauthClient.get('/v1/me')).data);
        } catch (err) {
          next(err);
        } finally {
          setTimeout(() => own.resume(), STORE_TIMEOUT * 2);
        }
      });
      app.get('/ready', (req, res, next) => env.auth.readinessHandler()(req, res, next));
    },
  });
});
afterAll(async () => {
  await env?.close();
  await redis?.quit().catch(() => {});
  await own?.stop();
});

const json = { accept: 'application/json' };
const page = { accept: 'text/html' };

async function timed(p: Promise<BrowserResponse>) {
  const started = Date.now();
  const res = await p;
  return { res, ms: Date.now() - started };
}

function expect503(res: BrowserResponse, ms: number) {
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBeTruthy();
  expect(ms).toBeLessThan(BOUND);
  // No cookie cleared or replaced, no login redirect started.
  expect(res.setCookies.filter((c) => c.startsWith('connect.sid='))).toEqual([]);
  expect(res.location).toBeUndefined();
}

describe('F: Redis outages (failure table: 503, nothing lost)', () => {
  it('F10: Redis paused mid-traffic: 503 within the bound for API calls, pages and logins; afterwards the same session works', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const raw = await env.rawRecord(sid);
    own.pause();
    try {
      const api = await timed(browser.request(`${env.appUrl}/api/me`, { headers: json }));
      expect503(api.res, api.ms);
      expect(JSON.parse(api.res.body)).toEqual({ error: 'store_unavailable' });
      const profile = await timed(browser.request(`${env.appUrl}/profile`, { headers: page }));
      expect503(profile.res, profile.ms);
      const login = await timed(new TestBrowser().request(`${env.appUrl}/oauth/login`));
      expect503(login.res, login.ms);
      const loginWithCookie = await timed(browser.request(`${env.appUrl}/oauth/login`));
      expect503(loginWithCookie.res, loginWithCookie.ms);
    } finally {
      own.resume();
    }
    const after = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(after.status).toBe(200);
    expect(await env.rawRecord(sid)).toBe(raw);
  });

  it('F11: Redis paused while the token record is read: 503 within the bound, nothing deleted', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const raw = await env.rawRecord(sid);
    const { res, ms } = await timed(browser.request(`${env.appUrl}/api/pause-then-call`, { headers: json }));
    expect503(res, ms);
    await new Promise((r) => setTimeout(r, STORE_TIMEOUT * 3));
    expect(await env.rawRecord(sid)).toBe(raw);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
  });

  it('F12: Redis down after the code exchange: 503, and the fresh refresh token is revoked', async () => {
    const browser = new TestBrowser();
    const cb = await env.startLogin(browser);
    let issued: string | undefined;
    env.provider.setTokenRewrite((body) => {
      issued = body.refresh_token as string;
      own.pause(); // Redis stops right after the provider answered
      return body;
    }, 'authorization_code');
    const revocationsBefore = env.provider.counters.revocations;
    let res: BrowserResponse;
    try {
      ({ res } = await timed(browser.request(cb)).then((t) => {
        expect(t.ms).toBeLessThan(BOUND * 2);
        return t;
      }));
    } finally {
      env.provider.setTokenRewrite(undefined);
      own.resume();
    }
    expect(res.status).toBe(503);
    expect(issued).toBeTruthy();
    for (let i = 0; i < 50 && env.provider.counters.revocations === revocationsBefore; i++) await new Promise((r) => setTimeout(r, 20));
    expect(env.provider.counters.revocations).toBeGreaterThan(revocationsBefore);
    expect(await env.provider.provider.RefreshToken.find(issued!)).toBeUndefined();
  });

  it('F13: Redis killed: 503 within the bound; restarted empty: login required (never a 500), then a new login works', async () => {
    const { browser } = await env.login();
    await own.kill();
    const api = await timed(browser.request(`${env.appUrl}/api/me`, { headers: json }));
    expect503(api.res, api.ms);
    const profile = await timed(browser.request(`${env.appUrl}/profile`, { headers: page }));
    expect503(profile.res, profile.ms);
    await own.restart();
    // The client reconnects by itself; no restart of the app.
    let status = 503;
    for (let i = 0; i < 100 && status === 503; i++) {
      status = (await browser.request(`${env.appUrl}/api/me`, { headers: json })).status;
      if (status === 503) await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(401);
    const pageAfter = await browser.request(`${env.appUrl}/profile`, { headers: page });
    expect(pageAfter.status).toBe(302);
    expect(pageAfter.location).toContain('/oauth/login');
    const again = await env.login(browser);
    expect(again.callback.status).toBe(302);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
  });

  it('F14: ready() waits for Redis, isReady() reports it, and the readiness route answers 503 then 200', async () => {
    expect(await env.auth.isReady()).toBe(true);
    own.pause();
    try {
      expect(await env.auth.isReady()).toBe(false);
      const r = await new TestBrowser().request(`${env.appUrl}/ready`);
      expect(r.status).toBe(503);
      const ready = env.auth.ready();
      setTimeout(() => own.resume(), 300);
      await ready;
    } finally {
      own.resume();
    }
    expect((await new TestBrowser().request(`${env.appUrl}/ready`)).status).toBe(200);
  });
});
