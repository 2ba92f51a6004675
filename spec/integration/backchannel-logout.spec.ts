import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT, generateKeyPair } from 'jose';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { CLIENT_ID } from '../helpers/provider.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Moves a browser's session cookie to another app instance (what a load balancer does). */
function toInstance(browser: TestBrowser, from: TestEnv, to: TestEnv): void {
  browser.cookies(to.appUrl).set('connect.sid', browser.cookies(from.appUrl).get('connect.sid')!);
}

async function until(check: () => Promise<boolean>, ms = 1000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

describe('back-channel logout (rule 17, family L)', () => {
  let a: TestEnv;
  let b: TestEnv;

  beforeAll(async () => {
    a = await createEnv({ backchannelLogout: true, oauth: { backchannelLogout: true } });
    b = await createEnv({ sharing: a, oauth: { backchannelLogout: true } });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  const claims = (over: Record<string, unknown> = {}) => ({
    iss: a.provider.issuer,
    aud: CLIENT_ID,
    iat: Math.floor(Date.now() / 1000),
    exp: Math.floor(Date.now() / 1000) + 120,
    jti: randomUUID(),
    events: { [EVENT]: {} },
    sub: 'alice',
    ...over,
  });
  const post = (body: string, headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' }, method = 'POST') =>
    fetch(`${a.appUrl}/oauth/backchannel-logout`, { method, headers, body: method === 'GET' ? undefined : body });
  const form = (token: string) => new URLSearchParams({ logout_token: token }).toString();
  const loggedIn = async (env: TestEnv, browser: TestBrowser) =>
    (await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } })).status === 200;

  it('L1: ending the session at the provider logs out two browsers on two app instances within a second, revokes their tokens, and leaves a third user alone', async () => {
    const { browser: b1 } = await a.login(new TestBrowser(), { user: 'alice' });
    // A second browser on the same provider session (single sign-on), served by the other app instance
    // (both instances sit behind one public URL: the login completes on the callback URL, then B serves it).
    const b2 = new TestBrowser();
    b1.copyCookiesTo(b2, a.provider.issuer);
    await a.login(b2, { user: 'alice' });
    toInstance(b2, a, b);
    const { browser: b3 } = await a.login(new TestBrowser(), { user: 'carol' });
    const [s1, s2, s3] = [a.sid(b1), a.sid(b2), a.sid(b3)];
    expect(new Set([s1, s2, s3]).size).toBe(3);
    const t1 = (await a.readRecord(s1))!;
    const t2 = (await a.readRecord(s2))!;
    const carolRaw = await a.rawRecord(s3);
    expect(await loggedIn(a, b1)).toBe(true);
    expect(await loggedIn(b, b2)).toBe(true);

    // The user signs out at the provider: oidc-provider posts a real logout token to the app.
    const page = await b1.request(`${a.provider.issuer}/session/end`);
    expect(page.status).toBe(200);
    await b1.submitForm(page, { logout: 'yes' });

    expect(await until(async () => (await a.rawRecord(s1)) === null && (await a.rawRecord(s2)) === null)).toBe(true);
    expect(await loggedIn(a, b1)).toBe(false);
    expect(await loggedIn(b, b2)).toBe(false);
    expect((await b1.request(`${a.appUrl}/`)).body).toContain('anonymous');
    expect((await b2.request(`${b.appUrl}/`)).body).toContain('anonymous');
    expect(await a.provider.accessTokenValid(t1.access_token)).toBe(false);
    expect(await a.provider.accessTokenValid(t2.access_token)).toBe(false);
    // Sessions destroyed in the shared store, index emptied.
    expect(await a.redis.exists(`${a.prefix}sess:${s1}`)).toBe(0);
    expect(await a.redis.exists(`${a.prefix}sess:${s2}`)).toBe(0);
    // The third user is untouched.
    expect(await a.rawRecord(s3)).toBe(carolRaw);
    expect(await loggedIn(a, b3)).toBe(true);
  });

  it('L2: a logout token with only `sub` ends every session of that user (all devices), 200 no-store', async () => {
    const { browser: d1 } = await a.login(new TestBrowser(), { user: 'dora' });
    const { browser: d2 } = await a.login(new TestBrowser(), { user: 'dora' });
    toInstance(d2, a, b);
    const { browser: other } = await a.login(new TestBrowser(), { user: 'erin' });
    const events: string[] = [];
    a.auth.events.on('session_ended', (e) => events.push(e.reason));
    const res = await post(form(await a.provider.signJwt(claims({ sub: 'dora' }))));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await loggedIn(a, d1)).toBe(false);
    expect(await loggedIn(b, d2)).toBe(false);
    expect(await loggedIn(a, other)).toBe(true);
    expect(events).toEqual(['backchannel', 'backchannel']);
    // Index keys name hashes, never the user.
    const keys = await a.redis.keys(`${a.prefix}idx:*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.join(' ')).not.toMatch(/dora|erin|alice/);
    expect(await a.redis.exists(keys.filter((k) => k.includes('idx:sub:')).map((k) => k))).toBeGreaterThan(0);
  });

  describe('bad input: 400, nothing deleted, nothing echoed', () => {
    let victim: TestBrowser;
    let sid: string;
    let raw: string | null;

    beforeAll(async () => {
      ({ browser: victim } = await a.login(new TestBrowser(), { user: 'victim' }));
      sid = a.sid(victim);
      raw = await a.rawRecord(sid);
    });

    async function refused(res: Response, sent: string, reason?: string): Promise<void> {
      const text = await res.text();
      const logged = a.logger.lines.filter((l) => l.includes('back-channel logout refused')).at(-1) ?? '';
      if (reason) expect(logged).toContain(`refused: ${reason}`);
      if (process.env.SHOW_REASONS) console.log(logged);
      expect(res.status).toBe(400);
      expect(JSON.parse(text)).toEqual({ error: 'invalid_request', error_description: 'The logout token was not accepted.' });
      expect(res.headers.get('cache-control')).toBe('no-store');
      if (sent.length > 20) expect(text.includes(sent.slice(0, 40))).toBe(false);
      expect(await a.rawRecord(sid)).toBe(raw);
      expect(await loggedIn(a, victim)).toBe(true);
    }
    const victimClaims = (over: Record<string, unknown> = {}) => claims({ sub: 'victim', ...over });

    it('L3: unsigned (`alg: none`), with and without a signature part', async () => {
      const none = `${b64({ alg: 'none' })}.${b64(victimClaims())}.`;
      await refused(await post(form(none)), none, 'malformed');
      const noneSigned = `${b64({ alg: 'none' })}.${b64(victimClaims())}.${b64('x')}`;
      await refused(await post(form(noneSigned)), noneSigned, 'algorithm_refused');
    });

    it('L4: HMAC keyed with the provider public key (HS256, HS512)', async () => {
      for (const [alg, hash] of [
        ['HS256', 'sha256'],
        ['HS512', 'sha512'],
      ] as const) {
        const input = `${b64({ alg, kid: 'test-key' })}.${b64(victimClaims())}`;
        const token = `${input}.${createHmac(hash, a.provider.publicKeyPem).update(input).digest('base64url')}`;
        await refused(await post(form(token)), token, 'algorithm_refused');
      }
    });

    it('L5: signed by another issuer: another key, and the right key with another `iss`', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      const foreign = await new SignJWT(victimClaims()).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).sign(privateKey);
      await refused(await post(form(foreign)), foreign, 'bad_signature');
      const otherIss = await a.provider.signJwt(victimClaims({ iss: 'https://evil.example' }));
      await refused(await post(form(otherIss)), otherIss, 'issuer_mismatch');
    });

    it('L6: for another audience', async () => {
      const t = await a.provider.signJwt(victimClaims({ aud: 'another-client' }));
      await refused(await post(form(t)), t, 'audience_mismatch');
    });

    it('L7: expired, too old, or issued in the future', async () => {
      const now = Math.floor(Date.now() / 1000);
      for (const over of [
        { iat: now - 600, exp: now - 300 },
        { iat: now - 600, exp: now + 600 },
        { iat: now + 600, exp: now + 900 },
      ]) {
        const t = await a.provider.signJwt(victimClaims(over));
        await refused(await post(form(t)), t);
      }
    });

    it('L8: replayed (the `jti` is single use)', async () => {
      const t = await a.provider.signJwt(claims({ sub: 'nobody-logged-in' }));
      expect((await post(form(t))).status).toBe(200);
      await refused(await post(form(t)), t, 'replayed');
    });

    it('L9: carrying a `nonce`', async () => {
      const t = await a.provider.signJwt(victimClaims({ nonce: 'n-0S6_WzA2Mj' }));
      await refused(await post(form(t)), t, 'nonce_present');
    });

    it('L10: without `events`, with the wrong event, with neither `sub` nor `sid`, without `jti`', async () => {
      const bad = [
        victimClaims({ events: undefined }),
        victimClaims({ events: { 'http://schemas.openid.net/event/other': {} } }),
        victimClaims({ events: { [EVENT]: 'yes' } }),
        victimClaims({ sub: undefined }),
        victimClaims({ jti: undefined }),
      ];
      for (const c of bad) {
        const t = await a.provider.signJwt(JSON.parse(JSON.stringify(c)) as Record<string, unknown>);
        await refused(await post(form(t)), t);
      }
    });

    it('L11: oversized body and oversized token', async () => {
      const big = `logout_token=${'a'.repeat(20 * 1024)}`;
      await refused(await post(big), big, 'oversized');
      const longToken = `${b64({ alg: 'RS256' })}.${'a'.repeat(9000)}.${'b'.repeat(10)}`;
      await refused(await post(form(longToken)), longToken, 'oversized');
    });

    it('L12: sent as GET, as JSON, as multipart, with two logout_token values, or none', async () => {
      const t = await a.provider.signJwt(victimClaims());
      const get = await fetch(`${a.appUrl}/oauth/backchannel-logout?logout_token=${t}`);
      await refused(get, t, 'method');
      await refused(await post(JSON.stringify({ logout_token: t }), { 'content-type': 'application/json' }), t);
      await refused(
        await post(`--x\r\ncontent-disposition: form-data; name="logout_token"\r\n\r\n${t}\r\n--x--`, {
          'content-type': 'multipart/form-data; boundary=x',
        }),
        t,
      );
      await refused(await post(`${form(t)}&${form(t)}`), t);
      await refused(await post('other=1'), 'other=1');
      // And the same token, sent properly once, is genuine: the refusals above were about the request.
      const ok = await post(form(t));
      expect(ok.status).toBe(200);
      expect(await loggedIn(a, victim)).toBe(false);
    });
  });

  it('L13: the route is not mounted without the option', async () => {
    const plain = await createEnv();
    try {
      const res = await fetch(`${plain.appUrl}/oauth/backchannel-logout`, {
        method: 'POST',
        body: 'logout_token=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(res.status).toBe(404);
    } finally {
      await plain.close();
    }
  });
});
