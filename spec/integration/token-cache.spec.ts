import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RedisTokenStore, type TokenStore } from '../../lib/index.js';
import { connectRedis, createEnv, type Redis, type TestEnv } from '../helpers/env.js';

const CACHE_MS = 2000;
let redis: Redis;
let env: TestEnv;
let gets = 0;

beforeAll(async () => {
  redis = await connectRedis();
  const inner = new RedisTokenStore({ client: redis, prefix: `test:cache:${process.pid}:` });
  // Counts the store reads the middleware makes.
  const counting: TokenStore = {
    get: (sid) => {
      gets++;
      return inner.get(sid);
    },
    set: (...a) => inner.set(...a),
    replace: (...a) => inner.replace(...a),
    deleteIf: (...a) => inner.deleteIf(...a),
    delete: (...a) => inner.delete(...a),
    lock: (...a) => inner.lock(...a),
    unlock: (...a) => inner.unlock(...a),
    ping: () => inner.ping(),
  };
  env = await createEnv({ redis, tokenStore: counting, oauth: { tokenCacheMs: CACHE_MS } });
});
afterAll(async () => {
  await env?.close();
  await redis?.quit();
});

const json = { accept: 'application/json' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('in-process token cache (tokenCacheMs)', () => {
  it('repeated API calls within tokenCacheMs read the store once; after it, once more', async () => {
    const { browser } = await env.login();
    const before = gets;
    const started = Date.now();
    for (let i = 0; i < 5; i++) expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(CACHE_MS); // otherwise the machine is too slow for this check to mean anything
    expect(gets - before).toBe(1);
    await sleep(CACHE_MS + 50);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    expect(gets - before).toBe(2);
  });

  it('a refresh made by this process replaces the cached record at once', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const record = (await env.readRecord(sid))!;
    await env.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5, updated_at: 0 });
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    const refreshed = (await env.readRecord(sid))!;
    expect(refreshed.version).toBe(record.version + 1);
    const before = gets;
    const apiBefore = env.api.authorizations.length;
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    expect(gets - before).toBe(0);
    expect(env.api.authorizations.at(-1)?.authorization).toBe(`Bearer ${refreshed.access_token}`);
    expect(env.api.authorizations.length - apiBefore).toBe(1);
  });

  it('a cached token the API rejects is replaced through a refresh, not served again', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200); // now cached
    const record = (await env.readRecord(sid))!;
    await (await env.provider.provider.AccessToken.find(record.access_token))!.destroy();
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    expect((await env.readRecord(sid))!.access_token).not.toBe(record.access_token);
  });

  it('a record tampered with in the store is noticed once the cache entry is older than tokenCacheMs', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    await env.tokenStore.set(sid, 'tampered', 60_000);
    await sleep(CACHE_MS + 50);
    const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(res.status).toBe(401);
  });
});
