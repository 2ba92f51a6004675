import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Request } from 'express';
import { TestBrowser, authorizeAtProvider } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { beginLogin, callbackUrl, expectNoSecrets, expectNothingLost, snapshot } from '../helpers/assertions.js';
import { CLIENT_SECRET } from '../helpers/provider.js';
import type { TokenStore } from '../../lib/index.js';

/**
 * Family O of security.md (rules 13, 14): anonymous traffic creates no long-lived state, cross-site pages
 * cannot cancel a login in progress, and logout is final against stale session writes and in-flight refreshes.
 */

const json = { accept: 'application/json' };
const TX_TTL_MS = 10 * 60 * 1000;

/** A gate a test opens by hand: routes wait on it to simulate a slow request. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open, entered: 0 };
}
let slow = gate();

type SessionWithApp = Request['session'] & { visits?: number; cart?: string };

let env: TestEnv;
beforeAll(async () => {
  env = await createEnv({
    oauth: { tokenCacheMs: 0 },
    routes: (app) => {
      // A slow route that writes to the session after a while (what a stale save looks like).
      app.get('/slow-write', async (req, res) => {
        slow.entered++;
        await slow.opened;
        const s = req.session as SessionWithApp;
        s.visits = (s.visits ?? 0) + 1;
        res.json({ ok: true });
      });
      // A fast route that writes to the session on every call.
      app.get('/write', async (req, res) => {
        // Long enough that requests in flight straddle a logout.
        await new Promise((r) => setTimeout(r, 15));
        const s = req.session as SessionWithApp;
        s.visits = (s.visits ?? 0) + 1;
        res.json({ ok: true, authenticated: req.oauth.isAuthenticated });
      });
      app.get('/cart', (req, res) => {
        (req.session as SessionWithApp).cart = 'book';
        res.json({ ok: true });
      });
    },
  });
});
afterAll(async () => {
  slow.open();
  await env?.close();
});

const sessionKey = (sid: string) => `${env.prefix}sess:${sid}`;
const isCallback = (u: string) => u.startsWith(`${env.appUrl}/oauth/callback`);
const logout = (browser: TestBrowser, appUrl = env.appUrl) =>
  browser.request(`${appUrl}/oauth/logout`, { method: 'POST', headers: { origin: appUrl, ...json } });

async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('O: anonymous traffic creates no long-lived state (rule 13)', () => {
  it('O1: a session created only for a pending login expires with it, and a completed login gets the app lifetime back', async () => {
    const browser = new TestBrowser();
    const { response, authUrl } = await beginLogin(env, browser, '/after');
    const cookie = response.setCookies.find((c) => c.startsWith('connect.sid='))!;
    const expires = /;\s*Expires=([^;]+)/i.exec(cookie)?.[1];
    expect(expires).toBeDefined();
    const left = new Date(expires!).getTime() - Date.now();
    expect(left).toBeGreaterThan(TX_TTL_MS - 60_000);
    expect(left).toBeLessThanOrEqual(TX_TTL_MS + 1000);
    const anonymousSid = env.sid(browser);
    const ttl = await env.redis.pTTL(sessionKey(anonymousSid));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(TX_TTL_MS);

    const cb = await authorizeAtProvider(browser, authUrl.href, 'alice', isCallback);
    const done = await browser.request(cb);
    expect(done.status).toBe(302);
    expect(done.location).toBe(`${env.appUrl}/after`);
    // The logged-in session is the app's own (express-session default: connect-redis's one day).
    expect(await env.redis.pTTL(sessionKey(env.sid(browser)))).toBeGreaterThan(TX_TTL_MS * 2);
    expect(await env.redis.exists(sessionKey(anonymousSid))).toBe(0);
  });

  it('O2: a login started over a logged-in session, or a session holding app data, does not shorten that session', async () => {
    const { browser } = await env.login();
    await beginLogin(env, browser);
    expect(await env.redis.pTTL(sessionKey(env.sid(browser)))).toBeGreaterThan(TX_TTL_MS * 2);

    const shopper = new TestBrowser();
    expect((await shopper.request(`${env.appUrl}/cart`)).status).toBe(200);
    await beginLogin(env, shopper);
    expect(await env.redis.pTTL(sessionKey(env.sid(shopper)))).toBeGreaterThan(TX_TTL_MS * 2);
    expect(await env.redis.get(sessionKey(env.sid(shopper)))).toContain('"cart":"book"');
  });

  it('O3: 10,000 anonymous logins with the longest returnTo: one key each, every key expires within 10 minutes, bytes bounded', async () => {
    const n = 10_000;
    const returnTo = `/${'a'.repeat(2000)}`;
    const url = `${env.appUrl}/oauth/login?returnTo=${encodeURIComponent(returnTo)}`;
    const sids: string[] = [];
    let next = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < n) {
          next++;
          const res = await fetch(url, { redirect: 'manual' });
          expect(res.status).toBe(302);
          const sc = res.headers.getSetCookie().find((c) => c.startsWith('connect.sid='))!;
          const v = decodeURIComponent(sc.slice('connect.sid='.length, sc.indexOf(';')));
          sids.push(v.slice(2, v.lastIndexOf('.')));
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    expect(new Set(sids).size).toBe(n);
    let bytes = 0;
    let maxTtl = 0;
    for (let i = 0; i < n; i += 500) {
      const batch = sids.slice(i, i + 500);
      const multi = env.redis.multi();
      for (const sid of batch) multi.pTTL(sessionKey(sid)).strLen(sessionKey(sid));
      const replies = (await multi.exec()) as unknown as number[];
      for (let j = 0; j < replies.length; j += 2) {
        expect(replies[j]).toBeGreaterThan(0);
        maxTtl = Math.max(maxTtl, replies[j]!);
        bytes += replies[j + 1]!;
      }
    }
    expect(maxTtl).toBeLessThanOrEqual(TX_TTL_MS);
    // The figure in the README ("Anonymous traffic"): printed so a run shows it.
    process.stdout.write(
      `\n[O3] ${n} anonymous logins in ${seconds.toFixed(1)} s: ${n} session keys, ${(bytes / n).toFixed(0)} bytes each (${(bytes / 1024 / 1024).toFixed(1)} MiB), max TTL ${(maxTtl / 1000).toFixed(0)} s\n`,
    );
    expect(bytes / n).toBeLessThan(3 * 1024);
    for (let i = 0; i < n; i += 1000) await env.redis.del(sids.slice(i, i + 1000).map(sessionKey));
  }, 120_000);

  it('O4: returnTo longer than 2048 characters is not stored (the login goes to "/")', async () => {
    const browser = new TestBrowser();
    await beginLogin(env, browser, `/${'b'.repeat(2048)}`);
    const stored = (await env.redis.get(sessionKey(env.sid(browser))))!;
    expect(stored).not.toContain('bbbb');
    expect(stored).toContain('"returnTo":"/"');
    expect(stored.length).toBeLessThan(1024);
  });
});

describe('O: cross-site pages cannot cancel a login in progress (rule 13)', () => {
  it('O5: forced cross-site logins never push out the login the user started here; its callback still completes', async () => {
    const browser = new TestBrowser();
    const { authUrl } = await beginLogin(env, browser, '/mine');
    const cb = await authorizeAtProvider(browser, authUrl.href, 'alice', isCallback);
    // The attacker's page forces top-level GETs of the login route (the browser sends the user's cookie).
    for (let i = 0; i < 12; i++) {
      const forced = await browser.request(`${env.appUrl}/oauth/login`, { headers: { 'sec-fetch-site': 'cross-site' } });
      expect(forced.status).toBe(302);
    }
    const done = await browser.request(cb);
    expect(done.status).toBe(302);
    expect(done.location).toBe(`${env.appUrl}/mine`);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
  });

  it('O6: with every slot held by logins started here, a cross-site login is refused (429) and all of them still complete', async () => {
    const browser = new TestBrowser();
    const logins: URL[] = [];
    for (let i = 0; i < 5; i++) logins.push((await beginLogin(env, browser, `/tab${i}`)).authUrl);
    const sid = env.sid(browser);
    const stored = await env.redis.get(sessionKey(sid));
    const forced = await browser.request(`${env.appUrl}/oauth/login`, { headers: { 'sec-fetch-site': 'cross-site', ...json } });
    expect(forced.status).toBe(429);
    expect(forced.headers.get('retry-after')).toBe('60');
    expect(JSON.parse(forced.body)).toEqual({ error: 'login_busy' });
    expect(forced.setCookies).toEqual([]);
    expect(await env.redis.get(sessionKey(sid))).toBe(stored);
    // A same-origin login still takes the oldest slot (tabs keep working as before).
    const cb = await authorizeAtProvider(browser, logins[4]!.href, 'alice', isCallback);
    const done = await browser.request(cb);
    expect(done.status).toBe(302);
    expect(done.location).toBe(`${env.appUrl}/tab4`);
  });
});

describe('O: logout is final (rule 14)', () => {
  it('O7: a request that loaded the session before logout and saves it afterwards does not bring the login back', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const stolen = new TestBrowser();
    browser.copyCookiesTo(stolen, env.appUrl);
    slow = gate();
    const pending = stolen.request(`${env.appUrl}/slow-write`, { headers: json });
    await until(() => slow.entered === 1);
    expect((await logout(browser)).status).toBe(204);
    slow.open();
    expect((await pending).status).toBe(200);
    await until(async () => (await env.redis.exists(sessionKey(sid))) === 0);
    const home = await stolen.request(`${env.appUrl}/`);
    expect(home.body).toContain('anonymous');
    const me = await stolen.request(`${env.appUrl}/api/me`, { headers: json });
    expect(me.status).toBe(401);
    expect(JSON.parse(me.body)).toEqual({ error: 'login_required' });
    expect(await env.redis.exists(sessionKey(sid))).toBe(0);
  });

  it('O8: an attacker looping a session-writing route on a stolen cookie during logout is logged out when the loop ends', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const stolen = new TestBrowser();
    browser.copyCookiesTo(stolen, env.appUrl);
    let loggedOut = false;
    let afterLogout = 0;
    const loops = Array.from({ length: 4 }, async () => {
      while (!loggedOut || afterLogout < 40) {
        const r = await stolen.request(`${env.appUrl}/write`, { headers: json });
        expect(r.status).toBe(200);
        if (loggedOut) afterLogout++;
      }
    });
    await new Promise((r) => setTimeout(r, 50));
    expect((await logout(browser)).status).toBe(204);
    loggedOut = true;
    await Promise.all(loops);
    const check = await stolen.request(`${env.appUrl}/write`, { headers: json });
    expect(JSON.parse(check.body).authenticated).toBe(false);
    expect((await stolen.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(401);
    const stored = await env.redis.get(sessionKey(sid));
    expect(stored === null || !stored.includes('"user"')).toBe(true);
  });

  it('O9: a session write of a live login keeps the login (the guard only removes sessions whose login ended)', async () => {
    const { browser } = await env.login();
    for (let i = 0; i < 3; i++) expect(JSON.parse((await browser.request(`${env.appUrl}/write`, { headers: json })).body).authenticated).toBe(true);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    expect(await env.redis.get(sessionKey(env.sid(browser)))).toContain('"visits":3');
  });
});

describe('O: a refresh racing the logout (rule 14)', () => {
  let racing: TestEnv;
  let onReplace: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const inner = env.tokenStore;
    // The refresh's compare-and-set write waits for a hook: the test logs out there, after the provider
    // has issued new tokens and before they are stored.
    const store: TokenStore = {
      get: (sid) => inner.get(sid),
      set: (sid, v, ttl) => inner.set(sid, v, ttl),
      replace: async (sid, expected, value, ttl) => {
        const hook = onReplace;
        onReplace = undefined;
        await hook?.();
        return inner.replace(sid, expected, value, ttl);
      },
      deleteIf: (sid, expected) => inner.deleteIf(sid, expected),
      delete: (sid) => inner.delete(sid),
      lock: (sid, owner, ttl) => inner.lock(sid, owner, ttl),
      unlock: (sid, owner) => inner.unlock(sid, owner),
    };
    racing = await createEnv({ tokenStore: store, oauth: { tokenCacheMs: 0 } });
  });
  afterAll(async () => {
    racing?.provider.setTokenRewrite(undefined);
    await racing?.close();
  });

  it('O10: tokens a refresh obtained while the user logged out are revoked, and the in-flight call gets 401', async () => {
    const { browser } = await racing.login();
    const sid = racing.sid(browser);
    const record = (await racing.readRecord(sid))!;
    await racing.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 10, version: record.version + 1 });
    const issued: Record<string, unknown>[] = [];
    racing.provider.setTokenRewrite((body) => (issued.push(body), body), 'refresh_token');
    const other = new TestBrowser();
    browser.copyCookiesTo(other, racing.appUrl);
    onReplace = async () => {
      expect((await logout(other, racing.appUrl)).status).toBe(204);
    };
    const revocationsBefore = racing.provider.counters.revocations;
    const call = await browser.request(`${racing.appUrl}/api/me`, { headers: json });
    expect(call.status).toBe(401);
    expect(JSON.parse(call.body)).toEqual({ error: 'login_required' });
    expect(issued).toHaveLength(1);
    const fresh = issued[0] as { access_token: string; refresh_token: string };
    // Logout revoked the old pair; the refresher revokes the new pair nobody stored.
    await until(async () => !(await racing.provider.accessTokenValid(fresh.access_token)));
    await until(() => racing.provider.counters.revocations - revocationsBefore >= 4);
    expect(await racing.provider.provider.RefreshToken.find(fresh.refresh_token)).toBeUndefined();
    expect(await racing.rawRecord(sid)).toBeNull();
    expectNoSecrets(racing, [fresh.access_token, fresh.refresh_token, CLIENT_SECRET], [call.body]);
  });
});

describe('O/G: SameSite and callback failure reporting', () => {
  let unset: TestEnv;
  beforeAll(async () => {
    unset = await createEnv({ cookie: { httpOnly: true, secure: false, path: '/' } });
  });
  afterAll(async () => {
    await unset?.close();
  });

  it('O11: when the app left sameSite unset, the login and the logged-in session cookies are SameSite=Lax', async () => {
    const browser = new TestBrowser();
    const { response, authUrl } = await beginLogin(unset, browser);
    expect(response.setCookies.find((c) => c.startsWith('connect.sid='))).toMatch(/;\s*SameSite=Lax/i);
    const cb = await authorizeAtProvider(browser, authUrl.href, 'alice', (u) => u.startsWith(`${unset.appUrl}/oauth/callback`));
    const done = await browser.request(cb);
    expect(done.status).toBe(302);
    expect(done.setCookies.find((c) => c.startsWith('connect.sid='))).toMatch(/;\s*SameSite=Lax/i);
    expect(unset.logger.lines.filter((l) => l.includes('SameSite'))).toEqual([]);
  });

  it('O12: an explicit sameSite choice of the app (none) is kept, and reported once', async () => {
    const none = await createEnv({ cookie: { httpOnly: true, secure: false, path: '/', sameSite: 'none' } });
    try {
      const browser = new TestBrowser();
      const { response } = await beginLogin(none, browser);
      await beginLogin(none, browser);
      expect(response.setCookies.find((c) => c.startsWith('connect.sid='))).toMatch(/;\s*SameSite=None/i);
      expect(none.logger.lines.filter((l) => l.includes('not SameSite=Lax'))).toHaveLength(1);
    } finally {
      await none.close();
    }
  });

  it('O13: every callback failure logs exactly one line with its reason (never a value) and fires login_failed', async () => {
    const events: string[] = [];
    const listener = ({ reason }: { reason: string }) => events.push(reason);
    env.auth.events.on('login_failed', listener);
    try {
      const cases: Array<[string, string]> = [];
      const b = new TestBrowser();
      const { state } = await beginLogin(env, b);
      cases.push([callbackUrl(env, 'code=abc'), 'missing_state']);
      cases.push([callbackUrl(env, 'state=forged-state-value&code=abc'), 'unknown_or_expired_state']);
      cases.push([callbackUrl(env, `state=${state}&state=${state}&code=abc`), 'repeated_state']);
      cases.push([callbackUrl(env, `state=${state}&iss=${encodeURIComponent('http://evil.example')}&code=abc`), 'issuer_mismatch']);
      const { state: s2 } = await beginLogin(env, b);
      cases.push([callbackUrl(env, `state=${s2}&iss=${encodeURIComponent(env.provider.issuer)}&error=server_error`), 'server_error']);
      const { state: s3 } = await beginLogin(env, b);
      cases.push([callbackUrl(env, `state=${s3}&iss=${encodeURIComponent(env.provider.issuer)}&code=injected-code-value`), 'code_rejected']);
      for (const [url, reason] of cases) {
        const linesBefore = env.logger.lines.length;
        const eventsBefore = events.length;
        const res = await b.request(url);
        expect(res.status).toBeGreaterThanOrEqual(400);
        const lines = env.logger.lines.slice(linesBefore);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toContain(`login failed at the callback: ${reason}`);
        expect(events.slice(eventsBefore)).toEqual([reason]);
        for (const value of ['forged-state-value', 'injected-code-value', 'evil.example', state, s2, s3]) expect(lines[0]).not.toContain(value);
      }
    } finally {
      env.auth.events.off('login_failed', listener);
    }
  });

  it('O14: a login that asked for offline access but got no refresh token warns once, with the likely fix', async () => {
    unset.provider.setTokenRewrite((body) => {
      delete body.refresh_token;
      return body;
    }, 'authorization_code');
    try {
      await unset.login();
      const { browser } = await unset.login();
      const before = await snapshot(unset, browser);
      const warnings = unset.logger.lines.filter((l) => l.includes('no refresh token although offline access was requested'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain("prompt: 'consent'");
      expect((await unset.readRecord(before.sid))!.refresh_token).toBeUndefined();
      await expectNothingLost(unset, browser, before, await browser.request(`${unset.appUrl}/`));
    } finally {
      unset.provider.setTokenRewrite(undefined);
    }
  });
});
