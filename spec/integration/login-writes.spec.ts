import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { guardSessionStore, markFreshLogin } from '../../lib/session-guard.js';
import { TestBrowser } from '../helpers/browser.js';
import { connectRedis, createEnv, type Redis, type TestEnv } from '../helpers/env.js';

type Callback = (err?: unknown) => void;

/** An express-session store (connect-redis underneath) that logs every call reaching it, in order. */
class LoggingStore extends session.Store {
  readonly calls: Array<{ op: 'get' | 'set' | 'destroy' | 'touch'; sid: string }> = [];
  constructor(private readonly inner: session.Store) {
    super();
  }
  get(sid: string, cb: (err: unknown, session?: session.SessionData | null) => void): void {
    this.calls.push({ op: 'get', sid });
    this.inner.get(sid, cb);
  }
  set(sid: string, data: session.SessionData, cb?: Callback): void {
    this.calls.push({ op: 'set', sid });
    this.inner.set(sid, data, cb);
  }
  destroy(sid: string, cb?: Callback): void {
    this.calls.push({ op: 'destroy', sid });
    this.inner.destroy(sid, cb);
  }
  override touch(sid: string, data: session.SessionData, cb?: Callback): void {
    this.calls.push({ op: 'touch', sid });
    this.inner.touch!(sid, data, cb ?? (() => {}));
  }
}

let redis: Redis;
let store: LoggingStore;
let env: TestEnv;
const prefix = `test:loginwrites:${process.pid}:${Date.now()}:sess:`;

beforeAll(async () => {
  redis = await connectRedis();
  store = new LoggingStore(new RedisStore({ client: redis, prefix }));
  env = await createEnv({ redis, sessionStore: store });
});
afterAll(async () => {
  await env?.close();
  await redis?.quit().catch(() => {});
});

describe('P4: what a login costs the session store (issue 14; rules 5 and 14), with nothing lost', () => {
  it('rule 5: the callback destroys the old session and writes the new one once (no second save of the same content, no read-back of the record)', async () => {
    const browser = new TestBrowser();
    const callbackUrl = await env.startLogin(browser);
    const oldSid = env.sid(browser);
    // Reads of token records during the callback (the logout guard reads one back after a write it does not know).
    const tokenStore = env.tokenStore;
    const get = tokenStore.get.bind(tokenStore);
    let tokenReads = 0;
    tokenStore.get = (sid: string) => (tokenReads++, get(sid));
    store.calls.length = 0;
    const res = await browser.request(callbackUrl).finally(() => (tokenStore.get = get));
    expect(res.status).toBe(302);
    const newSid = env.sid(browser);
    expect(newSid).not.toBe(oldSid);
    // Load, re-read (other tabs), destroy the old id, one write of the new session: express-session's own
    // second save of the regenerated session is answered without a write.
    expect(store.calls).toEqual([
      { op: 'get', sid: oldSid },
      { op: 'get', sid: oldSid },
      { op: 'destroy', sid: oldSid },
      { op: 'set', sid: newSid },
    ]);
    expect(tokenReads).toBe(0);
    // Nothing lost: the stored session holds the login, the old one is gone, the record is there, and the
    // next request is logged in.
    const stored = JSON.parse((await redis.get(`${prefix}${newSid}`))!) as { oauth?: { user?: { sub?: string } } };
    expect(stored.oauth?.user?.sub).toBeTruthy();
    expect(await redis.get(`${prefix}${oldSid}`)).toBeNull();
    expect(await env.readRecord(newSid)).not.toBeNull();
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } })).status).toBe(200);
  });

  it('rule 14: a session written after a login is skipped only when it is the same content under the same id', async () => {
    const inner = new LoggingStore(new RedisStore({ client: redis, prefix: `${prefix}unit:` }));
    guardSessionStore(inner, () => undefined);
    const set = (sid: string, s: object) =>
      new Promise<void>((resolve, reject) => inner.set(sid, s as never, (err) => (err ? reject(err) : resolve())));
    const writes = () => inner.calls.filter((c) => c.op === 'set').length;
    const cookie = { originalMaxAge: null, httpOnly: true, path: '/' };

    const a = { cookie, oauth: { user: { sub: 'alice' } } };
    markFreshLogin(a);
    await set('sid-a', a);
    expect(writes()).toBe(1);
    // express-session's second save at the end of the request: same content (its cookie refreshed), skipped.
    (a as Record<string, unknown>).cookie = { ...cookie, expires: new Date().toISOString() };
    await set('sid-a', a);
    expect(writes()).toBe(1);
    // Only once: a later write of the same session goes to the store.
    await set('sid-a', a);
    expect(writes()).toBe(2);

    // Changed content after the login's save is written.
    const b = { cookie, oauth: { user: { sub: 'bob' } } };
    markFreshLogin(b);
    await set('sid-b', b);
    (b as Record<string, unknown>).cart = ['x'];
    await set('sid-b', b);
    expect(writes()).toBe(4);
    expect(JSON.parse((await redis.get(`${prefix}unit:sid-b`))!).cart).toEqual(['x']);

    // The same content under another id is written.
    const c = { cookie, oauth: { user: { sub: 'carol' } } };
    markFreshLogin(c);
    await set('sid-c', c);
    await set('sid-c2', c);
    expect(writes()).toBe(6);
    expect(await redis.get(`${prefix}unit:sid-c2`)).not.toBeNull();
  });
});
