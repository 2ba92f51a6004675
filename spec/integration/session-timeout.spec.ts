import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { TestBrowser, type BrowserResponse } from '../helpers/browser.js';
import { connectRedis, createEnv, type Redis, type TestEnv } from '../helpers/env.js';
import { clearsSession, expectNothingLost, snapshot } from '../helpers/assertions.js';

type Op = 'set' | 'destroy';
type Callback = (err?: unknown) => void;

/**
 * An express-session store (connect-redis underneath) whose `set` and/or `destroy` never answer while
 * held, as a stalled Redis would. It is mounted WITHOUT boundedSessionStore, so only the package's own
 * `storeTimeout` can end the wait. On release, the held calls fail (nothing is written late).
 */
class HangingStore extends session.Store {
  readonly held = new Set<Op>();
  readonly waiting: Array<{ op: Op; cb?: Callback }> = [];
  constructor(private readonly inner: session.Store) {
    super();
  }
  hold(...ops: Op[]): void {
    for (const op of ops) this.held.add(op);
  }
  release(): void {
    this.held.clear();
    for (const w of this.waiting.splice(0)) w.cb?.(new Error(`released held ${w.op}`));
  }
  get(sid: string, cb: (err: unknown, session?: session.SessionData | null) => void): void {
    this.inner.get(sid, cb);
  }
  set(sid: string, data: session.SessionData, cb?: Callback): void {
    if (this.held.has('set')) return void this.waiting.push({ op: 'set', cb });
    this.inner.set(sid, data, cb);
  }
  destroy(sid: string, cb?: Callback): void {
    if (this.held.has('destroy')) return void this.waiting.push({ op: 'destroy', cb });
    this.inner.destroy(sid, cb);
  }
  override touch(sid: string, data: session.SessionData, cb?: Callback): void {
    this.inner.touch!(sid, data, cb ?? (() => {}));
  }
}

const STORE_TIMEOUT = 700;
/** Well above the bound, well below Jest's timeout: a request still waiting then is a hang. */
const HANG = 8000;

let redis: Redis;
let store: HangingStore;
let env: TestEnv;

beforeAll(async () => {
  redis = await connectRedis();
  store = new HangingStore(new RedisStore({ client: redis, prefix: `test:hang:${process.pid}:${Date.now()}:sess:` }));
  env = await createEnv({ redis, sessionStore: store, unboundedSessionStore: true, oauth: { storeTimeout: STORE_TIMEOUT } });
});
afterEach(() => store.release());
afterAll(async () => {
  store?.release();
  await env?.close();
  await redis?.quit().catch(() => {});
});

/** The request, or 'hung' if it has not answered within {@link HANG} ms; with the elapsed time. */
async function timed(work: Promise<BrowserResponse>): Promise<{ res: BrowserResponse | 'hung'; elapsed: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const res = await Promise.race([work, new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), HANG)))]);
  clearTimeout(timer);
  return { res, elapsed: Date.now() - started };
}

function expect503(r: { res: BrowserResponse | 'hung'; elapsed: number }): BrowserResponse {
  expect(r.res).not.toBe('hung');
  const res = r.res as BrowserResponse;
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBeTruthy();
  expect(r.elapsed).toBeLessThan(HANG);
  return res;
}

describe('F: storeTimeout bounds session save, regenerate and destroy (failure table)', () => {
  /** What the token store holds under this env's prefix: records and session-index fields (the index maps a user to her sessions). */
  const holdings = async () => {
    let records = 0;
    let indexFields = 0;
    for await (const keys of redis.scanIterator({ MATCH: `${env.prefix}*`, COUNT: 200 })) {
      for (const key of keys) {
        if (key.includes('idx:')) indexFields += await redis.hLen(key);
        else if (key.includes('tok:')) records++;
      }
    }
    return { records, indexFields };
  };
  /** Waits (up to 5 s) until the token store holds what it held `before` (the failed login's undo is not awaited by its answer). */
  const settlesBackTo = async (before: { records: number; indexFields: number }) => {
    const deadline = Date.now() + 5000;
    let after = await holdings();
    while ((after.records !== before.records || after.indexFields !== before.indexFields) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      after = await holdings();
    }
    return after;
  };

  it('F21: login whose session save hangs: 503 with Retry-After within the bound, no login started, nothing lost', async () => {
    const { browser } = await env.login();
    const before = await snapshot(env, browser);
    const authRequests = env.provider.counters.authorizationRequests;
    store.hold('set');
    // The status line and headers are the package's answer. (express-session then tries to save the session
    // itself before ending the body: with a store not wrapped by boundedSessionStore that last write waits for
    // the store, so the body is read only after the release.)
    const url = `${env.appUrl}/oauth/login?returnTo=%2Fx`;
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      fetch(url, { headers: { cookie: browser.cookieHeader(url) }, redirect: 'manual' }),
      new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), HANG))),
    ]);
    clearTimeout(timer);
    const elapsed = Date.now() - started;
    store.release();
    expect(answered).not.toBe('hung');
    const raw = answered as Response;
    const res: BrowserResponse = {
      status: raw.status,
      headers: raw.headers,
      body: await raw.text(),
      url,
      location: raw.headers.get('location') ?? undefined,
      setCookies: raw.headers.getSetCookie(),
    };
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
    expect(elapsed).toBeLessThan(HANG);
    expect(res.location).toBeUndefined();
    expect(env.provider.counters.authorizationRequests).toBe(authRequests);
    await expectNothingLost(env, browser, before, res);
  });

  it('F22: callback whose session regenerate hangs: 503 within the bound, no session, no stored tokens or index entry, the fresh grant revoked', async () => {
    const browser = new TestBrowser();
    const cb = await env.startLogin(browser);
    const preLogin = env.sid(browser);
    const revocations = env.provider.counters.revocations;
    const tokenRequests = env.provider.counters.tokenRequests;
    const held = await holdings();
    store.hold('destroy');
    const res = expect503(await timed(browser.request(cb)));
    store.release();
    expect(env.provider.counters.tokenRequests - tokenRequests).toBe(1);
    expect(res.setCookies.filter(clearsSession)).toEqual([]);
    expect(env.sid(browser)).toBe(preLogin);
    expect(await env.rawRecord(preLogin)).toBeNull();
    // The new session's record and index entry are written while the old session's destroy runs: the failed
    // login removes them once everything has settled (not before a write it undoes).
    expect(await settlesBackTo(held)).toEqual(held);
    const deadline = Date.now() + 10_000;
    while (env.provider.counters.revocations === revocations && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(env.provider.counters.revocations).toBeGreaterThan(revocations);
    // Not logged in, and a new login works.
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } })).status).toBe(401);
    expect((await env.login(browser)).callback.status).toBe(302);
  });

  it('F24: callback whose final session save hangs: 503, and neither a token record nor a session-index entry is left for the new session', async () => {
    const browser = new TestBrowser();
    const cb = await env.startLogin(browser);
    const before = await holdings();
    store.hold('set');
    // The unbounded store also holds express-session's own end-of-request save of the answer (see F21): the
    // held writes fail when released, and the answer then goes out.
    const pending = browser.request(cb);
    setTimeout(() => store.release(), 1500);
    expect((await pending).status).toBe(503);
    // The record and the index entry were written before the save; the failed login removes both (best effort,
    // not awaited by the answer): wait for it.
    expect(await settlesBackTo(before)).toEqual(before);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } })).status).toBe(401);
  });

  it('F23: logout whose session destroy hangs: 503 within the bound, no cookie cleared, and the login is over (logout is final)', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    store.hold('destroy');
    const res = expect503(
      await timed(
        browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: env.appUrl, 'sec-fetch-site': 'same-origin' } }),
      ),
    );
    store.release();
    expect(res.setCookies.filter(clearsSession)).toEqual([]);
    expect(await env.rawRecord(sid)).toBeNull();
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } })).status).toBe(401);
    // The retried logout completes.
    const again = await browser.request(`${env.appUrl}/oauth/logout`, {
      method: 'POST',
      headers: { origin: env.appUrl, 'sec-fetch-site': 'same-origin' },
    });
    expect(again.status).toBe(302);
  });
});
