import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import request from 'supertest';
import { boundedSessionStore } from '../../lib/index.js';
import { connectRedis, type Redis } from '../helpers/env.js';

/** connect-redis, counting the touches that reach it. */
class CountingStore extends RedisStore {
  touches = 0;
  override touch(...args: Parameters<RedisStore['touch']>): ReturnType<RedisStore['touch']> {
    this.touches++;
    return super.touch(...args);
  }
}

let redis: Redis;
const prefix = `test:touch:${process.pid}:${Date.now()}:`;
const FILLER = 'x'.repeat(20_000);

beforeAll(async () => {
  redis = await connectRedis();
});
afterAll(async () => {
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) if (keys.length) await redis.del(keys);
  await redis.quit();
});

function appWith(touchAfter: number | undefined, name: string, maxAge = 60_000, rolling = false) {
  const inner = new CountingStore({ client: redis, prefix: `${prefix}${name}:` });
  const app = express();
  app.use(
    session({
      store: boundedSessionStore(inner, touchAfter === undefined ? {} : { touchAfter }),
      secret: 'touch-test-secret-0123456789',
      resave: false,
      saveUninitialized: false,
      // `rolling` renews the browser's cookie on each response (a touch alone does not): without it a 2 s
      // session's cookie expires in the client 2 s after the login, whatever the store keeps.
      rolling,
      cookie: { maxAge },
    }),
  );
  app.post('/login', (req, res) => {
    (req.session as unknown as { user: string }).user = 'alice';
    res.json({ ok: true });
  });
  // A large body: the response must arrive whole whether the touch was passed on or answered at once.
  app.get('/me', (req, res) => res.json({ user: (req.session as unknown as { user?: string }).user ?? null, filler: FILLER }));
  return { app, inner, key: (sid: string) => `${prefix}${name}:${sid}` };
}

const sidOf = (cookie: string) => /connect\.sid=s:([^.;]+)/.exec(decodeURIComponent(cookie))![1]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('boundedSessionStore touchAfter (lazy touch)', () => {
  it('passes a touch on at most once per touchAfter after a write; responses arrive whole; the session is kept', async () => {
    const { app, inner, key } = appWith(1, 'lazy');
    const agent = request.agent(app);
    const login = await agent.post('/login').expect(200);
    const sid = sidOf(String(login.headers['set-cookie']));
    for (let i = 0; i < 10; i++) {
      const res = await agent.get('/me').expect(200);
      expect(res.body).toEqual({ user: 'alice', filler: FILLER });
    }
    // The write at login counts as a touch: none of the 10 requests within the second reached the store.
    expect(inner.touches).toBe(0);
    const ttlBefore = await redis.pTTL(key(sid));
    await sleep(1100);
    expect((await agent.get('/me').expect(200)).body.user).toBe('alice');
    expect(inner.touches).toBe(1);
    // That touch moved the expiry (back to about maxAge).
    expect(await redis.pTTL(key(sid))).toBeGreaterThan(ttlBefore);
    expect((await agent.get('/me').expect(200)).body.user).toBe('alice');
    expect(inner.touches).toBe(1);
    // Nothing lost: the stored session still holds the login.
    expect(JSON.parse((await redis.get(key(sid)))!).user).toBe('alice');
  });

  it('touchAfter: 0 passes every touch on, as express-session does', async () => {
    const { app, inner } = appWith(0, 'eager');
    const agent = request.agent(app);
    await agent.post('/login').expect(200);
    for (let i = 0; i < 5; i++) await agent.get('/me').expect(200);
    expect(inner.touches).toBe(5);
  });

  it('by default the window is a tenth of maxAge (at most 60 s): a long session is touched rarely, a short one often, and never expires later than maxAge', async () => {
    // maxAge 60 s: a 6 s window, so none of 10 quick requests after the login's write reaches the store.
    const long = appWith(undefined, 'default-long');
    const longAgent = request.agent(long.app);
    await longAgent.post('/login').expect(200);
    for (let i = 0; i < 10; i++) expect((await longAgent.get('/me').expect(200)).body.user).toBe('alice');
    expect(long.inner.touches).toBe(0);

    // maxAge 2 s: a 200 ms window, so requests 300 ms apart (or more, on a loaded machine) are each passed on, and
    // the TTL keeps up. The cookie rolls, so the client keeps sending it however long the requests take.
    const short = appWith(undefined, 'default-short', 2000, true);
    const shortAgent = request.agent(short.app);
    const login = await shortAgent.post('/login').expect(200);
    const sid = sidOf(String(login.headers['set-cookie']));
    for (let i = 0; i < 4; i++) {
      await sleep(300);
      expect((await shortAgent.get('/me').expect(200)).body.user).toBe('alice');
    }
    expect(short.inner.touches).toBe(4);
    const ttl = await redis.pTTL(short.key(sid));
    // Moved by the last touch, and never beyond maxAge: at least 1.2 s after the login, without the touches less
    // than 800 ms would be left; 1000 leaves a loaded machine up to 1 s between the last touch and this read.
    expect(ttl).toBeGreaterThan(1000);
    expect(ttl).toBeLessThanOrEqual(2000);
    // 2.4 s after the login without the touches it would be gone; it is alive and holds the login.
    expect(JSON.parse((await redis.get(short.key(sid)))!).user).toBe('alice');
  });

  it("without a cookie maxAge the default window is a tenth of the store's ttl (connect-redis `ttl`), so a short-lived session is kept alive", async () => {
    const inner = new CountingStore({ client: redis, prefix: `${prefix}storettl:`, ttl: 2 });
    const app = express();
    app.use(session({ store: boundedSessionStore(inner), secret: 'touch-test-secret-0123456789', resave: false, saveUninitialized: false }));
    app.post('/login', (req, res) => {
      (req.session as unknown as { user: string }).user = 'alice';
      res.json({ ok: true });
    });
    app.get('/me', (req, res) => res.json({ user: (req.session as unknown as { user?: string }).user ?? null }));
    const agent = request.agent(app);
    const login = await agent.post('/login').expect(200);
    const sid = sidOf(String(login.headers['set-cookie']));
    for (let i = 0; i < 4; i++) {
      await sleep(300);
      expect((await agent.get('/me').expect(200)).body.user).toBe('alice');
    }
    // 200 ms windows: every request 300 ms apart reached the store, and the session outlived its 2 s ttl.
    expect(inner.touches).toBe(4);
    await sleep(900);
    expect((await agent.get('/me').expect(200)).body.user).toBe('alice');
    expect(JSON.parse((await redis.get(`${prefix}storettl:${sid}`))!).user).toBe('alice');
  });

  it('refuses a negative or non-numeric touchAfter at startup', () => {
    expect(() => boundedSessionStore(new CountingStore({ client: redis }), { touchAfter: -1 })).toThrow(/touchAfter/);
    expect(() => boundedSessionStore(new CountingStore({ client: redis }), { touchAfter: Number.NaN })).toThrow(/touchAfter/);
  });
});
