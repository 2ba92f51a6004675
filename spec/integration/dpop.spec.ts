import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import type { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { oauthProxy } from '../../lib/index.js';
import { startDPoPApi, type DPoPApi } from '../helpers/dpop-api.js';
import { expectNoSecrets, privateKeySecrets } from '../helpers/assertions.js';
import { startChild, type ChildApp } from '../helpers/children.js';

const json = { accept: 'application/json' };
let env: TestEnv;
let api: DPoPApi;
let children: ChildApp[] = [];

beforeAll(async () => {
  api = await startDPoPApi(() => env.provider);
  // The provider demands DPoP nonces at the token endpoint; the API demands its own in some tests.
  env = await createEnv({
    provider: { dpopRequireNonce: true },
    oauth: { dpop: true, apiBaseUrl: api.url, tokenCacheMs: 0, httpTimeout: 1500 },
    routes: (app) => {
      app.get('/dpop/me', async (req, res) => res.json((await req.oauthClient.get('/v1/me')).data));
      app.post('/dpop/echo', async (req, res) => res.json((await req.oauthClient.post('/v1/echo?x=1#f', { a: 1 })).data));
      app.use('/bff', oauthProxy({ target: api.url }));
      app.get('/dpop/echo-proof', async (req, res) => res.json((await req.oauthClient.get('/v1/echo-proof')).data));
    },
  });
});
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await env?.close();
  await api?.close();
});

async function expire(browser: TestBrowser) {
  const sid = env.sid(browser);
  const record = (await env.readRecord(sid))!;
  await env.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5, updated_at: Math.floor(Date.now() / 1000) - 3600 });
  return record;
}

const jktOf = async (token: string) => (await env.provider.provider.AccessToken.find(token))?.jkt;
const sendRaw = (path: string, init: { method?: string; authorization?: string; dpop?: string }) =>
  fetch(`${api.url}${path}`, {
    method: init.method ?? 'GET',
    headers: { ...(init.authorization ? { authorization: init.authorization } : {}), ...(init.dpop ? { dpop: init.dpop } : {}) },
  });

describe('N: DPoP, RFC 9449 (rules 6, 8, 12, 18)', () => {
  it('N13: login binds the tokens to a per-login key kept only in the encrypted record; API calls carry a valid proof', async () => {
    const { browser, callback } = await env.login();
    expect(callback.status).toBe(302);
    const sid = env.sid(browser);
    const record = (await env.readRecord(sid))!;
    expect(record.token_type).toBe('DPoP');
    expect(record.dpop?.jkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await jktOf(record.access_token)).toBe(record.dpop!.jkt);
    // Not in the session record, not in plaintext in Redis.
    const sessionRaw = (await env.redis.get(`${env.prefix}sess:${sid}`))!;
    expect(sessionRaw).not.toContain(record.dpop!.jwk.d);
    expect(sessionRaw).not.toContain(record.dpop!.jkt);
    expect(await env.rawRecord(sid)).not.toContain(record.dpop!.jwk.d);

    api.seen.length = 0;
    const me = await browser.request(`${env.appUrl}/dpop/me`, { headers: json });
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body)).toEqual({ sub: 'alice' });
    const echo = await browser.request(`${env.appUrl}/dpop/echo`, { method: 'POST', headers: json });
    expect(echo.status).toBe(200);
    expect(api.seen.map((s) => s.outcome)).toEqual(['ok', 'ok']);
    expect(api.seen.every((s) => s.authorization === `DPoP ${record.access_token}`)).toBe(true);
    // A second login gets another key.
    const other = await env.login();
    const otherRecord = (await env.readRecord(env.sid(other.browser)))!;
    expect(otherRecord.dpop!.jkt).not.toBe(record.dpop!.jkt);
  });

  it('N14: the API demands a nonce: one challenge, one retry with the nonce; the nonce is reused, a rotated one answered again', async () => {
    const { browser } = await env.login();
    api.requireNonce = true;
    try {
      api.seen.length = 0;
      expect((await browser.request(`${env.appUrl}/dpop/me`, { headers: json })).status).toBe(200);
      expect(api.seen.map((s) => s.outcome)).toEqual(['nonce', 'ok']);
      api.seen.length = 0;
      expect((await browser.request(`${env.appUrl}/dpop/echo`, { method: 'POST', headers: json })).status).toBe(200);
      expect(api.seen.map((s) => s.outcome)).toEqual(['ok']);
      api.rotateNonce();
      api.seen.length = 0;
      expect((await browser.request(`${env.appUrl}/dpop/me`, { headers: json })).status).toBe(200);
      expect(api.seen.map((s) => s.outcome)).toEqual(['nonce', 'ok']);
    } finally {
      api.requireNonce = false;
    }
  });

  it('N15: a replayed proof, a proof for another URL or method, a token without its proof: the API refuses; the package never sent one', async () => {
    const { browser } = await env.login();
    const token = (await env.readRecord(env.sid(browser)))!.access_token;
    api.seen.length = 0;
    expect((await browser.request(`${env.appUrl}/dpop/me`, { headers: json })).status).toBe(200);
    const sent = api.seen[0]!;
    expect(sent.outcome).toBe('ok');
    const auth = `DPoP ${token}`;
    expect((await sendRaw('/v1/me', { authorization: auth, dpop: sent.dpop })).status).toBe(401); // replayed
    expect((await sendRaw('/v1/echo-proof', { authorization: auth, dpop: sent.dpop })).status).toBe(401); // other URL
    expect((await sendRaw('/v1/me', { method: 'DELETE', authorization: auth, dpop: sent.dpop })).status).toBe(401); // other method
    expect((await sendRaw('/v1/me', { authorization: auth })).status).toBe(401); // no proof
    expect((await sendRaw('/v1/me', { authorization: `Bearer ${token}` })).status).toBe(401); // bearer scheme
    expect(api.seen.slice(1).map((s) => s.outcome)).toEqual(['jti replayed', 'htu mismatch', 'htm mismatch', 'no proof', 'not the DPoP scheme']);
    // The proofs the package sent: fresh jti each, htu without query or fragment, ath of the token.
    api.seen.length = 0;
    await browser.request(`${env.appUrl}/dpop/me`, { headers: json });
    await browser.request(`${env.appUrl}/dpop/echo`, { method: 'POST', headers: json });
    const payloads = api.seen.map((s) => JSON.parse(Buffer.from(s.dpop!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>);
    expect(api.seen.map((s) => s.outcome)).toEqual(['ok', 'ok']);
    expect(payloads[0]!.jti).not.toBe(payloads[1]!.jti);
    expect(payloads[1]).toMatchObject({ htm: 'POST', htu: `${api.url}/v1/echo`, ath: createHash('sha256').update(token).digest('base64url') });
  });

  it('N16: refresh keeps the binding (same key, new token bound to it), with the provider demanding nonces', async () => {
    const { browser } = await env.login();
    const old = await expire(browser);
    const before = env.provider.counters.refreshGrants;
    expect((await browser.request(`${env.appUrl}/dpop/me`, { headers: json })).status).toBe(200);
    expect(env.provider.counters.refreshGrants - before).toBe(1);
    const record = (await env.readRecord(env.sid(browser)))!;
    expect(record.access_token).not.toBe(old.access_token);
    expect(record.dpop).toEqual(old.dpop);
    expect(await jktOf(record.access_token)).toBe(old.dpop!.jkt);
  });

  it('N17: a DPoP record whose key is missing or does not match is "logged out" (401), never a 500', async () => {
    for (const broken of [
      (r: Record<string, unknown>) => ({ ...r, dpop: undefined }),
      (r: Record<string, unknown>) => ({ ...r, dpop: { ...(r.dpop as object), jkt: 'A'.repeat(43) } }),
      (r: Record<string, unknown>) => ({
        ...r,
        dpop: { ...(r.dpop as object), jwk: { kty: 'EC', crv: 'P-256', x: 'x'.repeat(43), y: 'y'.repeat(43), d: 'd'.repeat(43) } },
      }),
    ]) {
      const { browser } = await env.login();
      const sid = env.sid(browser);
      const record = (await env.readRecord(sid))!;
      await env.writeRecord(sid, broken(record as unknown as Record<string, unknown>) as never);
      const res = await browser.request(`${env.appUrl}/dpop/me`, { headers: json });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toEqual({ error: 'login_required' });
      expect(await env.rawRecord(sid)).toBeNull();
    }
  });

  it('N20: the API proxy signs a proof per call (nonce challenge answered once) and never forwards a browser DPoP header', async () => {
    const { browser } = await env.login();
    api.requireNonce = true;
    try {
      api.seen.length = 0;
      const headers = { accept: 'application/json', 'x-csrf': '1', dpop: 'forged-by-the-browser' };
      const first = await browser.request(`${env.appUrl}/bff/v1/me?x=1`, { headers });
      expect(first.status).toBe(200);
      expect(JSON.parse(first.body)).toEqual({ sub: 'alice' });
      expect((await browser.request(`${env.appUrl}/bff/v1/me`, { headers })).status).toBe(200);
      expect(api.seen.map((s) => s.outcome)).toEqual(['nonce', 'ok', 'ok']);
      expect(api.seen.every((s) => s.dpop !== 'forged-by-the-browser')).toBe(true);
      expect(first.headers.get('dpop-nonce')).toBeNull();
    } finally {
      api.requireNonce = false;
    }
  });

  it('N18: a refresh storm across 4 processes: exactly one refresh, all 100 calls succeed with valid proofs, binding unchanged', async () => {
    children = await Promise.all(
      [0, 1, 2, 3].map(() => startChild(env, { httpTimeout: 1500, storeTimeout: 500, oauth: { dpop: true }, apiUrl: api.url })),
    );
    const { browser } = await env.login();
    const old = await expire(browser);
    // refreshErrors would count the provider's use_dpop_nonce challenge (answered once by openid-client).
    const before = env.provider.counters.refreshGrants;
    api.seen.length = 0;
    const cookie = browser.cookies(env.appUrl).get('connect.sid')!;
    const results = await Promise.all(
      children.flatMap((c) =>
        Array.from({ length: 25 }, () => {
          browser.cookies(c.url).set('connect.sid', cookie);
          return browser.request(`${c.url}/api/me`, { headers: json });
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(env.provider.counters.refreshGrants - before).toBe(1);
    expect(api.seen.filter((s) => s.outcome !== 'ok')).toEqual([]);
    const record = (await env.readRecord(env.sid(browser)))!;
    expect(record.dpop).toEqual(old.dpop);
    expect(await jktOf(record.access_token)).toBe(old.dpop!.jkt);
  });

  it('N19: no private key material and no proof in any response, log line or event; logout revokes', async () => {
    const events: unknown[] = [];
    for (const name of ['login', 'refresh', 'refresh_failed', 'logout'] as const) env.auth.events.on(name, (e: unknown) => events.push(e));
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const record = (await env.readRecord(sid))!;
    api.seen.length = 0;
    const echoed = await browser.request(`${env.appUrl}/dpop/echo-proof`, { headers: json });
    expect(echoed.status).toBe(200);
    // A careless API echoes the proof: the app gets it redacted, like the token.
    expect(echoed.body).not.toContain(api.seen[0]!.dpop!);
    await expire(browser);
    expect((await browser.request(`${env.appUrl}/dpop/me`, { headers: json })).status).toBe(200);
    const out = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: env.appUrl } });
    expect(out.status).toBe(302);
    expect(await env.provider.accessTokenValid(record.access_token)).toBe(false);
    expectNoSecrets(env, [...privateKeySecrets([record.dpop!.jwk]), record.access_token], [JSON.stringify(browser.seen), JSON.stringify(events)]);
  });
});
