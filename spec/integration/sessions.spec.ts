import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createCluster } from 'redis';
import { RedisTokenStore, oauth, MemoryTokenStore } from '../../lib/index.js';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, ENCRYPTION_KEY, type TestEnv } from '../helpers/env.js';
import { startCluster } from '../helpers/redis-cluster.js';

const json = { headers: { accept: 'application/json' } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('auth.sessions: list, revoke, revokeAll (L14-L16)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createEnv({
      oauth: { sessionUserAgent: true },
      routes: (app) => {
        app.get('/sessions', async (req, res) => res.json(await env.auth.sessions.list(req.oauth.user!.sub!, { current: req })));
        app.post('/sessions/others', async (req, res) =>
          res.json({ ended: await env.auth.sessions.revokeAll(req.oauth.user!.sub!, { except: req }) }),
        );
      },
    });
  });
  afterAll(() => env?.close());

  it('L14: list shows each login of the user with a handle (no session id), login time, last refresh, user agent and the current one', async () => {
    const { browser: one } = await env.login(new TestBrowser(), { user: 'frank' });
    const { browser: two } = await env.login(new TestBrowser(), { user: 'frank' });
    await env.login(new TestBrowser(), { user: 'grace' });
    const res = await one.request(`${env.appUrl}/sessions`, json);
    const list = JSON.parse(res.body) as Array<{ handle: string; loginAt: string; lastRefreshAt: string; userAgent?: string; current: boolean }>;
    expect(list).toHaveLength(2);
    expect(list.filter((s) => s.current)).toHaveLength(1);
    for (const s of list) {
      expect(s.handle).toMatch(/^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{32}$/);
      expect(res.body).not.toContain(env.sid(one));
      expect(res.body).not.toContain(env.sid(two));
      expect(Number.isNaN(Date.parse(s.loginAt))).toBe(false);
      expect(Number.isNaN(Date.parse(s.lastRefreshAt))).toBe(false);
      expect(typeof s.userAgent).toBe('string');
    }
  });

  it('L15: "sign out of all other devices" ends the others and keeps the current one; revoke(handle) ends one', async () => {
    const { browser: here } = await env.login(new TestBrowser(), { user: 'heidi' });
    const { browser: phone } = await env.login(new TestBrowser(), { user: 'heidi' });
    const { browser: laptop } = await env.login(new TestBrowser(), { user: 'heidi' });
    const phoneToken = (await env.readRecord(env.sid(phone)))!.access_token;
    const res = await here.request(`${env.appUrl}/sessions/others`, { method: 'POST' });
    expect(JSON.parse(res.body)).toEqual({ ended: 2 });
    expect((await here.request(`${env.appUrl}/api/me`, json)).status).toBe(200);
    expect((await phone.request(`${env.appUrl}/api/me`, json)).status).toBe(401);
    expect((await laptop.request(`${env.appUrl}/api/me`, json)).status).toBe(401);
    expect(await env.provider.accessTokenValid(phoneToken)).toBe(false);
    expect(await env.auth.sessions.list('heidi')).toHaveLength(1);

    const [only] = await env.auth.sessions.list('heidi');
    expect(await env.auth.sessions.revoke(only!.handle)).toBe(true);
    expect(await env.auth.sessions.revoke(only!.handle)).toBe(false);
    expect(await env.auth.sessions.revoke('not-a-handle')).toBe(false);
    expect((await here.request(`${env.appUrl}/api/me`, json)).status).toBe(401);
    expect(await env.auth.sessions.list('heidi')).toEqual([]);
  });

  it('L16: logout and expiry clean the index; a record gone by expiry leaves the index when listed', async () => {
    const { browser } = await env.login(new TestBrowser(), { user: 'ivan' });
    const { browser: other } = await env.login(new TestBrowser(), { user: 'ivan' });
    expect(await env.auth.sessions.list('ivan')).toHaveLength(2);
    await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { 'x-requested-with': 'test' } });
    expect(await env.auth.sessions.list('ivan')).toHaveLength(1);
    // The other login's record expires in the store: the index drops it when it is listed.
    await env.tokenStore.delete(env.sid(other));
    expect(await env.auth.sessions.list('ivan')).toEqual([]);
    const keys = await env.redis.keys(`${env.prefix}idx:*`);
    const fields = await Promise.all(keys.map((k) => env.redis.hLen(k)));
    expect(fields.every((n) => n > 0)).toBe(true);
  });
});

describe('session lifetimes (L17-L18)', () => {
  it('L17: absoluteLifetime ends a login N seconds after it happened, with a reason, an event, the record and index entry gone', async () => {
    const env = await createEnv({ oauth: { absoluteLifetime: 1 } });
    try {
      const ended: string[] = [];
      env.auth.events.on('session_ended', (e) => ended.push(e.reason));
      const { browser } = await env.login(new TestBrowser(), { user: 'judy' });
      const sid = env.sid(browser);
      expect((await browser.request(`${env.appUrl}/api/me`, json)).status).toBe(200);
      await sleep(1100);
      const res = await browser.request(`${env.appUrl}/api/me`, json);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toEqual({ error: 'login_required', reason: 'absolute_lifetime' });
      expect(ended).toEqual(['absolute_lifetime']);
      expect(await env.rawRecord(sid)).toBeNull();
      expect(await env.auth.sessions.list('judy')).toEqual([]);
      const page = await browser.request(`${env.appUrl}/profile`);
      expect(page.status).toBe(302);
      expect(page.location).toContain('/oauth/login');
    } finally {
      await env.close();
    }
  });

  it('L18: idleTimeout keeps an active user and ends an idle one; the idle stamp is written in coarse steps', async () => {
    const env = await createEnv({ oauth: { idleTimeout: 1 } });
    try {
      const { browser } = await env.login(new TestBrowser(), { user: 'ken' });
      const sid = env.sid(browser);
      for (let i = 0; i < 6; i++) {
        await sleep(300);
        expect((await browser.request(`${env.appUrl}/api/me`, json)).status).toBe(200);
      }
      await sleep(1100);
      const res = await browser.request(`${env.appUrl}/api/me`, json);
      expect(JSON.parse(res.body)).toEqual({ error: 'login_required', reason: 'idle_timeout' });
      expect(await env.rawRecord(sid)).toBeNull();
    } finally {
      await env.close();
    }
  });

  it('L19: a request that does not call the API does not read the token store to enforce lifetimes', async () => {
    const env = await createEnv({ oauth: { idleTimeout: 600, absoluteLifetime: 3600 } });
    try {
      const { browser } = await env.login(new TestBrowser(), { user: 'liam' });
      const store = env.tokenStore;
      let reads = 0;
      const get = store.get.bind(store);
      store.get = (sid: string) => (reads++, get(sid));
      for (let i = 0; i < 5; i++) expect((await browser.request(`${env.appUrl}/`)).body).toContain('logged in');
      expect(reads).toBe(0);
    } finally {
      await env.close();
    }
  });
});

describe('configuration and placement (L20-L21)', () => {
  it('L20: backchannelLogout with a custom store without the index is refused at startup with the fix', () => {
    const store = new MemoryTokenStore();
    const custom = {
      get: store.get.bind(store),
      set: store.set.bind(store),
      replace: store.replace.bind(store),
      deleteIf: store.deleteIf.bind(store),
      delete: store.delete.bind(store),
      lock: store.lock.bind(store),
      unlock: store.unlock.bind(store),
    };
    expect(() =>
      oauth({
        issuer: 'http://127.0.0.1:1',
        clientId: 'c',
        clientSecret: 's',
        redirectUri: 'http://localhost:3000/oauth/callback',
        tokenStore: custom,
        encryptionKey: ENCRYPTION_KEY,
        backchannelLogout: true,
      }),
    ).toThrow(/backchannelLogout.*indexAdd/);
  });

  it('L21: on Redis Cluster each index key is one slot of its own and every index call is a single-key command', async () => {
    const cluster = await startCluster();
    const client = createCluster({ rootNodes: cluster.rootNodes });
    client.on('error', () => {});
    try {
      await client.connect();
      const store = new RedisTokenStore({ client, prefix: 'c:' });
      // Sessions spread over slots; the index of one subject lists them all.
      const sids = Array.from({ length: 12 }, (_, i) => `session-${i}-${Math.random().toString(36).slice(2)}`);
      for (const sid of sids) {
        await store.set(sid, 'x', 60_000);
        await store.indexAdd('sub', 'a'.repeat(64), sid, '{"at":1}', 60_000);
      }
      expect(Object.keys(await store.indexGet('sub', 'a'.repeat(64))).sort()).toEqual([...sids].sort());
      await store.indexRemove('sub', 'a'.repeat(64), sids.slice(0, 6));
      expect(Object.keys(await store.indexGet('sub', 'a'.repeat(64)))).toHaveLength(6);
      const pttl = await client.pTTL('c:idx:sub:{' + 'a'.repeat(64) + '}');
      expect(pttl).toBeGreaterThan(50_000);
      await store.indexAdd('sub', 'a'.repeat(64), 'late', '{"at":2}', 1000); // a shorter TTL never lowers it
      expect(await client.pTTL('c:idx:sub:{' + 'a'.repeat(64) + '}')).toBeGreaterThan(50_000);
    } finally {
      await client.quit().catch(() => {});
      await cluster.stop();
    }
  });
});
