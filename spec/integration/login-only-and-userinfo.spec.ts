import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { MemoryTokenStore, oauth, oauthErrorHandler, requireAuth, type TokenStore } from '../../lib/index.js';
import { TestBrowser } from '../helpers/browser.js';
import { CapturedLogger, SESSION_SECRET, createEnv, type TestEnv } from '../helpers/env.js';
import { expectNoSecrets } from '../helpers/assertions.js';
import { CLIENT_SECRET } from '../helpers/provider.js';
import { startRecorder, type Recorder } from '../helpers/recorder.js';

/** A token store that counts reads, to show a refused call never reached it. */
function countingStore(): { store: TokenStore; gets: () => number } {
  const inner = new MemoryTokenStore();
  let gets = 0;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'get') return (...args: unknown[]) => (gets++, (v as (...a: unknown[]) => unknown).apply(target, args));
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store, gets: () => gets };
}

describe('login only (no apiBaseUrl), with fetchUserInfo', () => {
  let env: TestEnv;
  let recorder: Recorder;
  const counted = countingStore();

  beforeAll(async () => {
    recorder = await startRecorder();
    env = await createEnv({
      tokenStore: counted.store,
      // Only userinfo has `picture`, and its `name` differs from the ID token's.
      provider: {
        accountClaims: (id, use) => (use === 'userinfo' ? { picture: `https://pics.example.test/${id}.png`, name: `Userinfo ${id}` } : {}),
      },
      oauth: { apiBaseUrl: undefined, fetchUserInfo: true, scope: ['openid', 'profile', 'email'] },
      routes: (app) => app.get('/me', requireAuth(), (req, res) => res.json(req.oauth.user)),
    });
  });
  afterAll(async () => {
    await env?.close();
    await recorder?.close();
  });

  it('J21: oauth() starts without apiBaseUrl (the README "Login only" shape)', async () => {
    expect(await env.auth.isReady()).toBe(true);
  });

  it('C5: userinfo claims join req.oauth.user; the ID token wins on conflict; sub is the ID token sub', async () => {
    const { browser, callback } = await env.login(undefined, { returnTo: '/me' });
    expect(callback.status).toBe(302);
    const me = await browser.request(`${env.appUrl}/me`, { headers: { accept: 'application/json' } });
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body)).toEqual({
      sub: 'alice',
      name: 'User alice', // the ID token's, not userinfo's "Userinfo alice"
      email: 'alice@example.test',
      picture: 'https://pics.example.test/alice.png', // from userinfo only
    });
  });

  it('I42: req.oauthClient exists but every call rejects with api_not_configured, before any store read or request', async () => {
    const { browser } = await env.login();
    const readsBefore = counted.gets();
    const apiHits = env.api.authorizations.length;
    for (const url of ['https://anything.example', recorder.url, `${env.api.url}/v1/me`, '/v1/me']) {
      const res = await browser.request(`${env.appUrl}/api/call?url=${encodeURIComponent(url)}`, { headers: { accept: 'application/json' } });
      expect(res.status).toBe(500);
      expect(JSON.parse(res.body)).toEqual({ error: 'api_not_configured' });
    }
    expect(recorder.requests).toEqual([]);
    expect(env.api.authorizations.length).toBe(apiHits);
    expect(counted.gets()).toBe(readsBefore);
    // Still logged in: nothing was lost.
    expect((await browser.request(`${env.appUrl}/me`, { headers: { accept: 'application/json' } })).status).toBe(200);
    expect(env.logger.lines.some((l) => l.includes('no apiBaseUrl was configured in oauth()'))).toBe(true);
    const sid = env.sid(browser);
    const record = await env.readRecord(sid);
    expectNoSecrets(env, [CLIENT_SECRET, record!.access_token, record!.refresh_token ?? '', record!.id_token ?? '']);
  });

  it('C6: a failing userinfo fails the login (502), leaves no login behind and revokes the fresh tokens', async () => {
    const browser = new TestBrowser();
    const callback = await env.startLogin(browser);
    const revocations = env.provider.counters.revocations;
    env.provider.setPathFault('/me', { kind: 'status', status: 500, body: '{"error":"server_error"}' });
    try {
      const res = await browser.request(callback, { headers: { accept: 'application/json' } });
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body)).toEqual({ error: 'token_endpoint_error' });
    } finally {
      env.provider.setPathFault('/me', undefined);
    }
    const me = await browser.request(`${env.appUrl}/me`, { headers: { accept: 'application/json' } });
    expect(me.status).toBe(401);
    for (let i = 0; i < 100 && env.provider.counters.revocations === revocations; i++) await new Promise((r) => setTimeout(r, 20));
    expect(env.provider.counters.revocations).toBeGreaterThan(revocations);
    expect(env.logger.lines.some((l) => l.includes('login failed at the callback: token_endpoint_error'))).toBe(true);
  });

  it('C7: a userinfo response for another sub fails the login (OpenID Connect Core §5.3.2)', async () => {
    const browser = new TestBrowser();
    const callback = await env.startLogin(browser);
    env.provider.setPathFault('/me', { kind: 'respond', answer: () => ({ status: 200, body: { sub: 'mallory', name: 'Mallory' } }) });
    try {
      const res = await browser.request(callback, { headers: { accept: 'application/json' } });
      expect(res.status).toBe(502);
    } finally {
      env.provider.setPathFault('/me', undefined);
    }
    expect((await browser.request(`${env.appUrl}/me`, { headers: { accept: 'application/json' } })).status).toBe(401);
    expect(env.logger.lines.join('\n')).not.toContain('Mallory');
  });
});

describe('express-session without secret', () => {
  it('J26: oauthErrorHandler() answers 500 naming nothing secret and logs the fix once for several requests', async () => {
    const logger = new CapturedLogger();
    const auth = oauth({
      issuer: 'http://127.0.0.1:1',
      clientId: 'c',
      clientSecret: CLIENT_SECRET,
      redirectUri: 'http://127.0.0.1:3000/oauth/callback',
      tokenStore: new MemoryTokenStore(),
      encryptionKey: 'Dj4oXkI3HzxwBTcyzXIEzGiQlWvlrGH4/v58F0P8OGY=',
      logger,
    });
    try {
      const app = express();
      // The mistake under test: no `secret` (the types require one, so a JavaScript app is what makes it).
      app.use(session({ store: new session.MemoryStore(), resave: false, saveUninitialized: false } as unknown as session.SessionOptions));
      app.use(auth);
      app.get('/', (_req, res) => res.send('home'));
      app.use(oauthErrorHandler());
      const bodies: string[] = [];
      for (const accept of ['text/html', 'application/json', 'text/html']) {
        const res = await request(app).get('/').set('accept', accept);
        expect(res.status).toBe(500);
        bodies.push(res.text);
      }
      expect(JSON.parse(bodies[1]!)).toEqual({ error: 'session_missing' });
      const fix = logger.lines.filter((l) => l.includes('express-session has no `secret`'));
      expect(fix).toHaveLength(1);
      expect(fix[0]).toContain('openssl rand -base64 32');
      for (const text of [...bodies, ...logger.lines]) {
        expect(text).not.toContain(CLIENT_SECRET);
        expect(text).not.toContain(SESSION_SECRET);
      }
    } finally {
      auth.close();
    }
  });
});
