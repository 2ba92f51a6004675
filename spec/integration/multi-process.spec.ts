import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { startChild, type ChildApp } from '../helpers/children.js';

let env: TestEnv;
let children: ChildApp[] = [];
// Short deadlines so the lease of a dead lock holder (2 x httpTimeout + 3 x storeTimeout + 2 s) ends quickly.
const CHILD = { httpTimeout: 1500, storeTimeout: 500 };

beforeAll(async () => {
  env = await createEnv({ oauth: { httpTimeout: 1500 } });
});
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await env?.close();
});

const json = { accept: 'application/json' };
const refreshes = () => env.provider.counters.refreshGrants + env.provider.counters.refreshErrors;

async function expireAccessToken(browser: TestBrowser) {
  const sid = env.sid(browser);
  const record = (await env.readRecord(sid))!;
  await env.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5, updated_at: Math.floor(Date.now() / 1000) - 3600 });
  return record;
}

/** Calls a child app with the browser's session cookie (the jar is per host:port; the session is shared through Redis). */
function call(browser: TestBrowser, base: string) {
  const cookie = browser.cookies(env.appUrl).get('connect.sid');
  if (cookie) browser.cookies(base).set('connect.sid', cookie);
  return browser.request(`${base}/api/me`, { headers: json });
}

describe('E: refresh across processes sharing one Redis (rule 8)', () => {
  beforeAll(async () => {
    children = await Promise.all([0, 1, 2, 3].map(() => startChild(env, CHILD)));
  });

  it('E17: 4 processes x 25 concurrent calls with an expired token: exactly one refresh, all 100 succeed, grant intact', async () => {
    const { browser } = await env.login();
    const old = await expireAccessToken(browser);
    const before = refreshes();
    const results = await Promise.all(children.flatMap((c) => Array.from({ length: 25 }, () => call(browser, c.url))));
    expect(results.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(refreshes() - before).toBe(1);
    expect(env.provider.counters.refreshErrors).toBe(0);
    const record = (await env.readRecord(env.sid(browser)))!;
    expect(record.refresh_token).not.toBe(old.refresh_token);
    // The grant was not revoked by a reused refresh token: the new refresh token still works.
    expect(await env.provider.provider.RefreshToken.find(record.refresh_token!)).toBeDefined();
    for (const c of children) expect((await call(browser, c.url)).status).toBe(200);
  });

  it('E18: the lock holder dies mid-refresh: others get 503 or recover, nobody is logged out, the next call works', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const before = await expireAccessToken(browser);
    const lockKey = `${env.prefix}lock:{${sid}}`;
    // The holder's refresh never gets an answer, so it is still holding the lock when it is killed.
    env.provider.setTokenFault({ kind: 'hang' }, 'refresh_token');
    const victim = children[0]!;
    const pending = call(browser, victim.url).catch(() => undefined);
    for (let i = 0; i < 100 && !(await env.redis.exists(lockKey)); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await env.redis.exists(lockKey)).toBe(1);
    await victim.kill('SIGKILL');
    await pending;
    env.provider.setTokenFault(undefined);

    const during = await Promise.all(children.slice(1).map((c) => call(browser, c.url)));
    for (const r of during) {
      expect([200, 503]).toContain(r.status);
      if (r.status === 503) expect(r.headers.get('retry-after')).toBeTruthy();
      expect(r.setCookies.filter((c) => c.startsWith('connect.sid='))).toEqual([]);
    }
    // Nobody was logged out: the record is still there (the old one, or a newer one after recovery).
    const record = (await env.readRecord(sid))!;
    expect(record.version).toBeGreaterThanOrEqual(before.version);

    // After the lease, the next call works.
    for (let i = 0; i < 300 && (await env.redis.exists(lockKey)); i++) await new Promise((r) => setTimeout(r, 50));
    const after = await call(browser, children[1]!.url);
    expect(after.status).toBe(200);
    children[0] = await startChild(env, CHILD);
  });
});
