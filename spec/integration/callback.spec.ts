import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { beginLogin, callbackUrl, expectNothingLost, snapshot } from '../helpers/assertions.js';

let env: TestEnv;
let victim: TestBrowser;

beforeAll(async () => {
  env = await createEnv();
});
afterAll(async () => {
  await env?.close();
});
beforeEach(async () => {
  // A logged-in user whose session every negative test must leave intact.
  victim = (await env.login()).browser;
});

const iss = () => `iss=${encodeURIComponent(env.provider.issuer)}`;

describe('A: callback state (rules 1, 2)', () => {
  it('A1: a callback without state is rejected before any token request', async () => {
    const before = await snapshot(env, victim);
    const res = await victim.request(callbackUrl(env, `code=abc&${iss()}`));
    expect(res.status).toBe(400);
    expect(res.body).toContain('Login failed');
    expect(res.body).toContain('/oauth/login');
    await expectNothingLost(env, victim, before, res);
  });

  it('A2: a repeated state is rejected, even when one copy is genuine', async () => {
    const { state } = await beginLogin(env, victim);
    const before = await snapshot(env, victim);
    const res = await victim.request(callbackUrl(env, `code=abc&state=${state}&state=${state}&${iss()}`));
    expect(res.status).toBe(400);
    await expectNothingLost(env, victim, before, res);
  });

  it('A3: a forged state is rejected before any token request', async () => {
    await beginLogin(env, victim);
    const before = await snapshot(env, victim);
    const res = await victim.request(callbackUrl(env, `code=abc&state=${'A'.repeat(43)}&${iss()}`));
    expect(res.status).toBe(400);
    await expectNothingLost(env, victim, before, res);
  });

  it('A4: a callback started in another browser is rejected, and that browser still completes its login', async () => {
    const other = new TestBrowser();
    const otherCallback = await env.startLogin(other, { user: 'bob' });
    const before = await snapshot(env, victim);
    const res = await victim.request(otherCallback);
    expect(res.status).toBe(400);
    await expectNothingLost(env, victim, before, res);
    const done = await other.request(otherCallback);
    expect(done.status).toBe(302);
    const me = await other.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(JSON.parse(me.body).sub).toBe('bob');
  });

  it('A5: a replayed callback (back button) is rejected and the new login stays', async () => {
    const browser = new TestBrowser();
    const cb = await env.startLogin(browser);
    expect((await browser.request(cb)).status).toBe(302);
    const before = await snapshot(env, browser);
    const replay = await browser.request(cb);
    expect(replay.status).toBe(400);
    await expectNothingLost(env, browser, before, replay);
  });

  it('A6: an expired transaction (over 10 minutes) is rejected before any token request', async () => {
    const browser = new TestBrowser();
    const cb = await env.startLogin(browser);
    // Age the pending login in the stored session record.
    const key = `${env.prefix}sess:${env.sid(browser)}`;
    const sess = JSON.parse((await env.redis.get(key))!);
    for (const tx of Object.values(sess.oauth.tx) as Array<{ createdAt: number }>) tx.createdAt -= 11 * 60 * 1000;
    await env.redis.set(key, JSON.stringify(sess), { expiration: { type: 'EX', value: 600 } });
    const tokenRequests = env.provider.counters.tokenRequests;
    const res = await browser.request(cb);
    expect(res.status).toBe(400);
    expect(env.provider.counters.tokenRequests).toBe(tokenRequests);
  });

  it('A7: an oversized state is rejected', async () => {
    const before = await snapshot(env, victim);
    const res = await victim.request(callbackUrl(env, `code=abc&state=${'x'.repeat(5000)}&${iss()}`));
    expect(res.status).toBe(400);
    await expectNothingLost(env, victim, before, res);
  });

  it('A8: two tabs logging in at once both succeed, in either order', async () => {
    const browser = new TestBrowser();
    const tab1 = await env.startLogin(browser, { returnTo: '/one' });
    const tab2 = await env.startLogin(browser, { returnTo: '/two' });
    const r2 = await browser.request(tab2);
    expect(r2.status).toBe(302);
    expect(r2.location).toBe(`${env.appUrl}/two`);
    const r1 = await browser.request(tab1);
    expect(r1.status).toBe(302);
    expect(r1.location).toBe(`${env.appUrl}/one`);
    const me = await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(me.status).toBe(200);
  });
});

describe('A: single use under concurrency (rule 1)', () => {
  it('A9 (rule 1): the same callback sent twice at once redeems the code once: one login, one 400', async () => {
    const browser = new TestBrowser();
    const cb = await env.startLogin(browser);
    const before = env.provider.counters.tokenRequests;
    const results = await Promise.all([browser.request(cb), browser.request(cb)]);
    expect(results.map((r) => r.status).sort()).toEqual([302, 400]);
    expect(env.provider.counters.tokenRequests - before).toBe(1);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } })).status).toBe(200);
  });
});

describe('B: code injection and mix-up (rules 2, 3; RFC 9207)', () => {
  it("B1: a stolen code replayed with the victim's own transaction fails (PKCE) and the victim stays logged in", async () => {
    const attacker = new TestBrowser();
    const stolen = new URL(await env.startLogin(attacker, { user: 'mallory' }));
    const { state } = await beginLogin(env, victim);
    const before = await snapshot(env, victim);
    const res = await victim.request(callbackUrl(env, `code=${stolen.searchParams.get('code')}&state=${state}&${iss()}`));
    expect(res.status).toBe(400);
    // One token request (refused by the provider for the wrong verifier), nothing else changed.
    await expectNothingLost(env, victim, before, res, { tokenRequests: 1 });
    const me = await victim.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(JSON.parse(me.body).sub).toBe('alice');
  });

  it('B2: a transaction without its verifier cannot redeem a code', async () => {
    const browser = new TestBrowser();
    const cb = await env.startLogin(browser);
    const key = `${env.prefix}sess:${env.sid(browser)}`;
    const sess = JSON.parse((await env.redis.get(key))!);
    for (const tx of Object.values(sess.oauth.tx) as Array<{ verifier?: string }>) delete tx.verifier;
    await env.redis.set(key, JSON.stringify(sess), { expiration: { type: 'EX', value: 600 } });
    const cookie = browser.cookies(env.appUrl).get('connect.sid');
    const res = await browser.request(cb);
    expect(res.status).toBe(400);
    // The pending-login session may get its expiry renewed (same id); it is never cleared or replaced.
    expect(res.setCookies.filter((c) => c.startsWith('connect.sid=') && !c.startsWith(`connect.sid=${cookie};`))).toEqual([]);
  });

  it('B3: a wrong iss is rejected before any token request', async () => {
    const { state } = await beginLogin(env, victim);
    const before = await snapshot(env, victim);
    const res = await victim.request(callbackUrl(env, `code=abc&state=${state}&iss=${encodeURIComponent('https://evil.example')}`));
    expect(res.status).toBe(400);
    await expectNothingLost(env, victim, before, res);
  });

  it('B4: a missing iss is rejected when the provider advertises authorization_response_iss_parameter_supported', async () => {
    const { state } = await beginLogin(env, victim);
    const before = await snapshot(env, victim);
    const res = await victim.request(callbackUrl(env, `code=abc&state=${state}`));
    expect(res.status).toBe(400);
    await expectNothingLost(env, victim, before, res);
  });

  it('B5: tokens in the callback URL are refused', async () => {
    const { state } = await beginLogin(env, victim);
    const before = await snapshot(env, victim);
    const res = await victim.request(callbackUrl(env, `access_token=abc&token_type=bearer&state=${state}&${iss()}`));
    expect(res.status).toBe(400);
    await expectNothingLost(env, victim, before, res);
  });
});

/** Rewrites every pending login transaction of a browser's session in Redis. */
async function editPending(browser: TestBrowser, edit: (tx: Record<string, unknown>) => void) {
  const key = `${env.prefix}sess:${env.sid(browser)}`;
  const sess = JSON.parse((await env.redis.get(key))!);
  for (const tx of Object.values(sess.oauth.tx) as Array<Record<string, unknown>>) edit(tx);
  await env.redis.set(key, JSON.stringify(sess), { expiration: { type: 'EX', value: 600 } });
}

describe('B: the package checks iss itself, and refuses tokens and missing codes on their own (rule 2, RFC 9207)', () => {
  it("B6: the provider's real callback is refused when its iss differs from the issuer of the transaction (no token request)", async () => {
    // A genuine code, state and iss from the provider: openid-client alone would accept this response, since
    // iss matches the configured issuer. Only the package's own check (against the transaction) refuses it.
    const cb = await env.startLogin(victim);
    expect(new URL(cb).searchParams.get('iss')).toBe(env.provider.issuer);
    await editPending(victim, (tx) => (tx.issuer = 'https://another-issuer.example'));
    const before = await snapshot(env, victim);
    const res = await victim.request(cb);
    expect(res.status).toBe(400);
    await expectNothingLost(env, victim, before, res);
  });

  it('B7: a wrong iss is refused before the error is looked at: a forged access_denied with a foreign iss is 400, not 403', async () => {
    const { state } = await beginLogin(env, victim);
    const before = await snapshot(env, victim);
    const res = await victim.request(callbackUrl(env, `error=access_denied&state=${state}&iss=${encodeURIComponent('https://evil.example')}`));
    expect(res.status).toBe(400);
    await expectNothingLost(env, victim, before, res);
    // Same order without any iss, as the provider advertises authorization_response_iss_parameter_supported.
    const second = await beginLogin(env, victim);
    const res2 = await victim.request(callbackUrl(env, `error=access_denied&state=${second.state}`));
    expect(res2.status).toBe(400);
    await expectNothingLost(env, victim, before, res2);
  });

  it("B8: tokens in the callback URL are refused even next to the provider's genuine code, state and iss (no token request)", async () => {
    for (const extra of ['access_token=abc&token_type=bearer', 'id_token=eyJhbGciOiJub25lIn0.e30.', 'refresh_token=r', 'token=t']) {
      const cb = await env.startLogin(victim);
      const before = await snapshot(env, victim);
      const res = await victim.request(`${cb}&${extra}`);
      expect(res.status).toBe(400);
      await expectNothingLost(env, victim, before, res);
    }
  });

  it('A10: a callback with a valid state and iss but no code is refused by the code check: no token request, the transaction is spent', async () => {
    const { state } = await beginLogin(env, victim);
    const before = await snapshot(env, victim);
    const res = await victim.request(callbackUrl(env, `state=${state}&${iss()}`));
    expect(res.status).toBe(400);
    await expectNothingLost(env, victim, before, res);
    // The refusal came after the transaction was found and consumed (not from the state checks): it is single use.
    const again = await victim.request(callbackUrl(env, `code=abc&state=${state}&${iss()}`));
    expect(again.status).toBe(400);
    await expectNothingLost(env, victim, before, again);
  });
});

describe('C: provider errors on the callback (rule 2, failure table)', () => {
  it('C1: access_denied gives 403 and the existing login stays', async () => {
    const { state } = await beginLogin(env, victim);
    const before = await snapshot(env, victim);
    const res = await victim.request(callbackUrl(env, `error=access_denied&state=${state}&${iss()}`));
    expect(res.status).toBe(403);
    await expectNothingLost(env, victim, before, res);
  });

  it('C2: login_required and server_error fail the login without touching the session', async () => {
    for (const [error, status] of [
      ['login_required', 400],
      ['server_error', 502],
    ] as const) {
      const { state } = await beginLogin(env, victim);
      const before = await snapshot(env, victim);
      const res = await victim.request(callbackUrl(env, `error=${error}&state=${state}&${iss()}`));
      expect(res.status).toBe(status);
      await expectNothingLost(env, victim, before, res);
    }
  });

  it('C3: error_description with markup or CRLF is never reflected', async () => {
    const { state } = await beginLogin(env, victim);
    const before = await snapshot(env, victim);
    const desc = encodeURIComponent('<script>alert(1)</script>\r\nSet-Cookie: evil=1');
    const res = await victim.request(callbackUrl(env, `error=access_denied&error_description=${desc}&state=${state}&${iss()}`));
    expect(res.status).toBe(403);
    expect(res.body).not.toContain('<script>');
    expect(res.body).not.toContain('alert(1)');
    expect(res.headers.get('set-cookie') ?? '').not.toContain('evil');
    await expectNothingLost(env, victim, before, res);
  });

  it('C4: a state consumed by an error cannot be used again', async () => {
    const { state } = await beginLogin(env, victim);
    expect((await victim.request(callbackUrl(env, `error=access_denied&state=${state}&${iss()}`))).status).toBe(403);
    const again = await victim.request(callbackUrl(env, `code=abc&state=${state}&${iss()}`));
    expect(again.status).toBe(400);
  });
});

describe('G: session fixation, switching users, cookies (rules 5, 10)', () => {
  it('G1: the session id changes at login and the pre-login session is gone', async () => {
    const browser = new TestBrowser();
    const cb = await env.startLogin(browser);
    const preLogin = env.sid(browser);
    const res = await browser.request(cb);
    expect(res.status).toBe(302);
    const postLogin = env.sid(browser);
    expect(postLogin).not.toBe(preLogin);
    expect(await env.redis.get(`${env.prefix}sess:${preLogin}`)).toBeNull();
    expect(await env.rawRecord(preLogin)).toBeNull();
    expect(await env.rawRecord(postLogin)).not.toBeNull();
  });

  it("G2: a fixated session id planted by an attacker does not become the victim's login", async () => {
    const attacker = new TestBrowser();
    await beginLogin(env, attacker);
    const planted = attacker.cookies(env.appUrl).get('connect.sid')!;
    const browser = new TestBrowser();
    browser.cookies(env.appUrl).set('connect.sid', planted);
    const cb = await env.startLogin(browser);
    expect((await browser.request(cb)).status).toBe(302);
    expect(browser.cookies(env.appUrl).get('connect.sid')).not.toBe(planted);
    const asAttacker = await attacker.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(asAttacker.status).toBe(401);
  });

  it('G3: logging in as another user over a live session replaces it entirely', async () => {
    const browser = (await env.login(undefined, { user: 'alice' })).browser;
    const aliceSid = env.sid(browser);
    browser.jars.delete(new URL(env.provider.issuer).host); // log out at the provider, keep the app session
    await env.login(browser, { user: 'bob' });
    const bobSid = env.sid(browser);
    expect(bobSid).not.toBe(aliceSid);
    expect(await env.rawRecord(aliceSid)).toBeNull();
    const me = await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(JSON.parse(me.body).sub).toBe('bob');
  });

  it('G4: the session cookie is HttpOnly, SameSite=Lax, Path=/, without Domain', async () => {
    const browser = new TestBrowser();
    const cb = await env.startLogin(browser);
    const res = await browser.request(cb);
    const cookie = res.setCookies.find((c) => c.startsWith('connect.sid='))!;
    expect(cookie).toMatch(/;\s*HttpOnly/i);
    expect(cookie).toMatch(/;\s*SameSite=Lax/i);
    expect(cookie).toMatch(/;\s*Path=\//i);
    expect(cookie).not.toMatch(/Domain=/i);
  });

  it('G5: every /oauth/* response is Cache-Control: no-store', async () => {
    const browser = new TestBrowser();
    const login = await browser.request(`${env.appUrl}/oauth/login`);
    const cb = await browser.request(callbackUrl(env, 'state=x'));
    const out = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: env.appUrl } });
    const wrong = await browser.request(`${env.appUrl}/oauth/logout`);
    for (const r of [login, cb, out, wrong]) expect(r.headers.get('cache-control')).toBe('no-store');
  });
});

describe('H: returnTo through a whole login (rule 9)', () => {
  it.each(['//evil.example/x', '/\\evil.example', 'https://evil.example', '/%2F%2Fevil.example', '/.//evil.example', '/\t/evil.example'])(
    'H5: %s lands on this app',
    async (returnTo) => {
      const browser = new TestBrowser();
      const cb = await env.startLogin(browser, { returnTo });
      const res = await browser.request(cb);
      expect(res.status).toBe(302);
      const raw = res.headers.get('location')!;
      expect(raw.startsWith('/')).toBe(true);
      expect(raw.startsWith('//')).toBe(false);
      expect(new URL(raw, env.appUrl).origin).toBe(env.appUrl);
    },
  );
});
