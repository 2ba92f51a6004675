import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { expectNoSecrets } from '../helpers/assertions.js';
import { RedisTokenStore, type TokenStore } from '../../lib/index.js';

const json = { accept: 'application/json' };

/** A token store whose `lock` waits at a gate the test opens: the interleaving of two instances is fixed. */
class GatedLockStore implements TokenStore {
  lockCalls = 0;
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  constructor(private readonly inner: TokenStore) {}
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = undefined;
  }
  get = (sid: string) => this.inner.get(sid);
  set = (sid: string, value: string, ttlMs: number) => this.inner.set(sid, value, ttlMs);
  replace = (sid: string, expected: string, value: string, ttlMs: number) => this.inner.replace(sid, expected, value, ttlMs);
  deleteIf = (sid: string, expected: string) => this.inner.deleteIf(sid, expected);
  delete = (sid: string) => this.inner.delete(sid);
  unlock = (sid: string, owner: string) => this.inner.unlock(sid, owner);
  lock = async (sid: string, owner: string, ttlMs: number) => {
    this.lockCalls++;
    if (this.gate) await this.gate;
    return this.inner.lock(sid, owner, ttlMs);
  };
}

async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let envA: TestEnv;
let envB: TestEnv;
let gated: GatedLockStore;

beforeAll(async () => {
  // No token cache: each instance reads the store on every request, as two processes would after the cache ends.
  envA = await createEnv({ oauth: { tokenCacheMs: 0 } });
  gated = new GatedLockStore(new RedisTokenStore({ client: envA.redis, prefix: envA.prefix }));
  // B's own storeTimeout is long so the held lock call is not cut short by the store bound.
  envB = await createEnv({ sharing: envA, tokenStore: gated, oauth: { tokenCacheMs: 0, storeTimeout: 20_000 } });
});
afterAll(async () => {
  gated?.release();
  await envB?.close();
  await envA?.close();
});

function callOn(env: TestEnv, browser: TestBrowser, path = '/api/me') {
  browser.cookies(env.appUrl).set('connect.sid', browser.cookies(envA.appUrl).get('connect.sid')!);
  return browser.request(`${env.appUrl}${path}`, { headers: json });
}

async function expire(browser: TestBrowser) {
  const sid = envA.sid(browser);
  const record = (await envA.readRecord(sid))!;
  const now = Math.floor(Date.now() / 1000);
  await envA.writeRecord(sid, { ...record, expires_at: now - 5, updated_at: now - 3600 });
  return record;
}

describe('E: the record is re-read once the refresh lock is taken (rule 8)', () => {
  it('E22: an instance that waited for the lock uses the tokens another instance rotated meanwhile, never its stale refresh token', async () => {
    const { browser } = await envA.login();
    const sid = envA.sid(browser);
    const original = await expire(browser);
    const c = envA.provider.counters;
    const grants = c.refreshGrants;
    const errors = c.refreshErrors;

    // B reads the expired record (with refresh token R1) and reaches for the lock: it waits at the gate.
    gated.hold();
    const calls = gated.lockCalls;
    const pendingB = callOn(envB, browser);
    await until('instance B to ask for the lock', () => gated.lockCalls > calls);

    // Meanwhile A refreshes: R1 is rotated to R2 at the provider (reusing R1 now revokes the whole grant).
    const onA = await callOn(envA, browser);
    expect(onA.status).toBe(200);
    expect(c.refreshGrants - grants).toBe(1);
    const rotated = (await envA.readRecord(sid))!;
    expect(rotated.refresh_token).not.toBe(original.refresh_token);

    // B gets the lock only now: it must re-read, see A's fresh record, and not refresh with R1.
    gated.release();
    const onB = await pendingB;
    expect(onB.status).toBe(200);
    expect(c.refreshGrants - grants).toBe(1);
    expect(c.refreshErrors - errors).toBe(0);
    expect((await envA.readRecord(sid))!.refresh_token).toBe(rotated.refresh_token);

    // Nothing lost: the grant is intact, the rotated tokens still work on both instances, and the next refresh succeeds.
    expect(await envA.provider.accessTokenValid(rotated.access_token)).toBe(true);
    expect((await callOn(envB, browser)).status).toBe(200);
    await expire(browser);
    expect((await callOn(envA, browser)).status).toBe(200);
    expect(c.refreshGrants - grants).toBe(2);
    expect(c.refreshErrors - errors).toBe(0);
    expectNoSecrets(envB, [original.refresh_token!, rotated.refresh_token!, rotated.access_token], [onA.body, onB.body]);
  });
});
