import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { callbackUrl, expectNoSecrets, expectNothingLost, snapshot } from '../helpers/assertions.js';
import { CLIENT_SECRET } from '../helpers/provider.js';
import { startRecorder } from '../helpers/recorder.js';

let env: TestEnv;
/** A server that must never be contacted: it records everything it receives. */
let evil: { url: string; requests: Array<{ url: string; authorization?: string }>; server: http.Server };

/** An allowed API origin that redirects every request to the evil server (a live one: following would succeed). */
let redirector: http.Server;
let redirectorUrl: string;
let redirectorAuthorizations: Array<string | undefined>;

beforeAll(async () => {
  const requests: Array<{ url: string; authorization?: string }> = [];
  const server = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"evil":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  evil = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
  redirectorAuthorizations = [];
  redirector = http.createServer((req, res) => {
    redirectorAuthorizations.push(req.headers.authorization);
    res.writeHead(302, { location: `${evil.url}/stolen${req.url ?? ''}` }).end();
  });
  await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
  redirectorUrl = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
  env = await createEnv({ oauth: (_p, api) => ({ httpTimeout: 2000, apiBaseUrl: [api.url, redirectorUrl] }) });
});
afterAll(async () => {
  evil?.server.close();
  redirector?.close();
  await env?.close();
});

const json = { accept: 'application/json' };

describe('G: logout (rules 7, 11)', () => {
  it('G6: a cross-site logout (foreign Origin) is refused with 403 and the session is untouched', async () => {
    const { browser } = await env.login();
    const before = await snapshot(env, browser);
    const res = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: 'http://evil.example' } });
    expect(res.status).toBe(403);
    await expectNothingLost(env, browser, before, res);
  });

  it('G7: Sec-Fetch-Site: cross-site is refused even with a matching Origin', async () => {
    const { browser } = await env.login();
    const before = await snapshot(env, browser);
    const res = await browser.request(`${env.appUrl}/oauth/logout`, {
      method: 'POST',
      headers: { origin: env.appUrl, 'sec-fetch-site': 'cross-site' },
    });
    expect(res.status).toBe(403);
    await expectNothingLost(env, browser, before, res);
  });

  it('G8: a logout POST with neither Origin, Sec-Fetch-Site nor a custom header is refused', async () => {
    const { browser } = await env.login();
    const before = await snapshot(env, browser);
    const res = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST' });
    expect(res.status).toBe(403);
    await expectNothingLost(env, browser, before, res);
  });

  it('G16: Sec-Fetch-Site: same-site (a sibling origin of the same site) is refused, with or without its Origin', async () => {
    const { browser } = await env.login();
    const sibling = `http://127.0.0.1:${Number(new URL(env.appUrl).port) === 1 ? 2 : 1}`;
    for (const headers of [{ origin: sibling, 'sec-fetch-site': 'same-site' }, { 'sec-fetch-site': 'same-site' }] as Array<Record<string, string>>) {
      const before = await snapshot(env, browser);
      const revocations = env.provider.counters.revocations;
      const res = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers });
      expect(res.status).toBe(403);
      expect(env.provider.counters.revocations).toBe(revocations);
      await expectNothingLost(env, browser, before, res);
    }
  });

  it('G17: a revocation endpoint that redirects to a live server is not followed: the tokens go nowhere else, logout completes', async () => {
    const recorder = await startRecorder(() => ({ body: '' }));
    try {
      const { browser } = await env.login();
      const sid = env.sid(browser);
      const record = (await env.readRecord(sid))!;
      env.provider.setPathFault('/token/revocation', { kind: 'status', status: 307, body: '', headers: { location: `${recorder.url}/revoke` } });
      const res = await browser.request(`${env.appUrl}/oauth/logout`, {
        method: 'POST',
        headers: { origin: env.appUrl, 'sec-fetch-site': 'same-origin' },
      });
      env.provider.setPathFault('/token/revocation', undefined);
      expect(recorder.requests).toEqual([]);
      expect(res.status).toBe(302);
      expect(await env.rawRecord(sid)).toBeNull();
      expectNoSecrets(env, [record.access_token, record.refresh_token!, CLIENT_SECRET], [res.body]);
    } finally {
      env.provider.setPathFault('/token/revocation', undefined);
      await recorder.close();
    }
  });

  it('G9: GET on logout is 405 with Allow: POST, and the session is untouched', async () => {
    const { browser } = await env.login();
    const before = await snapshot(env, browser);
    const res = await browser.request(`${env.appUrl}/oauth/logout`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    await expectNothingLost(env, browser, before, res);
  });

  it('G10: POST on the callback is 405 with Allow', async () => {
    const browser = new TestBrowser();
    const res = await browser.request(callbackUrl(env, 'state=x&code=y'), { method: 'POST', headers: { origin: env.appUrl } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET');
    // A HEAD must not redeem a code either.
    const head = await browser.request(callbackUrl(env, 'state=x&code=y'), { method: 'HEAD' });
    expect(head.status).toBe(405);
  });

  it('G11: a same-origin logout revokes at the provider, deletes the record, destroys the session and clears the cookie', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const record = (await env.readRecord(sid))!;
    const res = await browser.request(`${env.appUrl}/oauth/logout`, {
      method: 'POST',
      headers: { origin: env.appUrl, 'sec-fetch-site': 'same-origin' },
    });
    expect(res.status).toBe(302);
    // RP-initiated logout at the provider, with id_token_hint and the configured post-logout target.
    const location = new URL(res.location!);
    expect(location.origin).toBe(env.provider.issuer);
    expect(location.searchParams.get('id_token_hint')).toBe(record.id_token);
    expect(res.setCookies.some((c) => /^connect\.sid=;/.test(c) && /Expires=Thu, 01 Jan 1970/i.test(c))).toBe(true);
    expect(await env.rawRecord(sid)).toBeNull();
    expect(await env.redis.get(`${env.prefix}sess:${sid}`)).toBeNull();
    expect(await env.provider.accessTokenValid(record.access_token)).toBe(false);
    expect(await env.provider.provider.RefreshToken.find(record.refresh_token!)).toBeUndefined();
  });

  it('G12: an XHR logout answers 204', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const res = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { 'x-requested-with': 'XMLHttpRequest' } });
    expect(res.status).toBe(204);
    expect(await env.rawRecord(sid)).toBeNull();
    expect(browser.cookies(env.appUrl).has('connect.sid')).toBe(false);
  });

  it('G13: without a login, an API request that asks for JSON gets 401 JSON, a page gets a redirect with returnTo', async () => {
    const browser = new TestBrowser();
    const apiRes = await browser.request(`${env.appUrl}/api/me`, { headers: json });
    expect(apiRes.status).toBe(401);
    expect(JSON.parse(apiRes.body)).toEqual({ error: 'login_required' });
    const xhr = await browser.request(`${env.appUrl}/api/me`, { headers: { 'x-requested-with': 'XMLHttpRequest' } });
    expect(xhr.status).toBe(401);
    const page = await browser.request(`${env.appUrl}/profile?x=1`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(302);
    expect(page.location).toBe(`${env.appUrl}/oauth/login?returnTo=${encodeURIComponent('/profile?x=1')}`);
  });
});

describe('I: parsing and outbound requests (rules 2, 3, 12)', () => {
  it('I1: prototype-pollution query keys on the callback are rejected and pollute nothing', async () => {
    const { browser } = await env.login();
    const before = await snapshot(env, browser);
    const res = await browser.request(callbackUrl(env, '__proto__[polluted]=1&constructor[prototype][polluted]=1&state[]=x'));
    expect(res.status).toBe(400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await expectNothingLost(env, browser, before, res);
  });

  it('I2: array and object values for state are not accepted as a state', async () => {
    const { browser } = await env.login();
    const before = await snapshot(env, browser);
    for (const q of ['state[]=a&state[]=b&code=c', 'state[a]=b&code=c', 'state=&code=c']) {
      const res = await browser.request(callbackUrl(env, q));
      expect(res.status).toBe(400);
    }
    const res = await browser.request(callbackUrl(env, 'state=a'));
    await expectNothingLost(env, browser, before, res);
  });

  it('I3: a huge query and invalid percent-encoding are rejected with 400', async () => {
    const { browser } = await env.login();
    const before = await snapshot(env, browser);
    const huge = await browser.request(callbackUrl(env, `state=a&pad=${'x'.repeat(9000)}`));
    expect(huge.status).toBe(400);
    const bad = await browser.request(callbackUrl(env, 'state=%E0%A4%A&code=%ZZ'));
    expect(bad.status).toBe(400);
    await expectNothingLost(env, browser, before, bad);
  });

  it('I4: a spoofed Host or X-Forwarded-Host never changes the redirect_uri', async () => {
    const browser = new TestBrowser();
    const res = await browser.request(`${env.appUrl}/oauth/login`, { headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' } });
    const redirectUri = new URL(res.location!).searchParams.get('redirect_uri');
    expect(redirectUri).toBe(`${env.appUrl}/oauth/callback`);
    const raw = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${env.appUrl}/oauth/login`, { headers: { host: 'evil.example' } }, (r) => resolve(String(r.headers.location)));
      req.on('error', reject);
      req.end();
    });
    expect(new URL(raw).searchParams.get('redirect_uri')).toBe(`${env.appUrl}/oauth/callback`);
  });

  it('I5: absolute URLs to other origins are refused before sending, and the token goes nowhere else', async () => {
    const { browser } = await env.login();
    for (const target of [
      `${evil.url}/steal`,
      `//127.0.0.1:${new URL(evil.url).port}/steal`,
      'file:///etc/passwd',
      `${evil.url.replace('127.0.0.1', 'localhost')}/x`,
    ]) {
      const res = await browser.request(`${env.appUrl}/api/call?url=${encodeURIComponent(target)}`, { headers: json });
      expect(res.status).toBe(500);
      expect(JSON.parse(res.body)).toEqual({ error: 'origin_not_allowed' });
    }
    expect(evil.requests).toEqual([]);
    expect(env.logger.lines.join('\n')).toContain('origin_not_allowed');
  });

  it('I6: an API redirect to a live server is not followed (no request, with or without the token, reaches the target)', async () => {
    const { browser } = await env.login();
    const before = await snapshot(env, browser);
    const seen = redirectorAuthorizations.length;
    const res = await browser.request(`${env.appUrl}/api/call?url=${encodeURIComponent(`${redirectorUrl}/v1/me`)}`, { headers: json });
    // The allowed origin did get the request (with the token), and its 302 came back to the app unfollowed.
    expect(redirectorAuthorizations.slice(seen)).toEqual([`Bearer ${(await env.readRecord(before.sid))!.access_token}`]);
    expect(evil.requests).toEqual([]);
    expect(res.status).toBe(302);
    await expectNothingLost(env, browser, before, res);
  });

  it('I7: proxy environment variables are ignored (the token never goes to a proxy)', async () => {
    const { browser } = await env.login();
    const saved = {
      HTTP_PROXY: process.env.HTTP_PROXY,
      http_proxy: process.env.http_proxy,
      NO_PROXY: process.env.NO_PROXY,
      no_proxy: process.env.no_proxy,
    };
    process.env.HTTP_PROXY = evil.url;
    process.env.http_proxy = evil.url;
    delete process.env.NO_PROXY;
    delete process.env.no_proxy;
    try {
      const res = await browser.request(`${env.appUrl}/api/me`, { headers: json });
      expect(res.status).toBe(200);
      // Rule 3: the code exchange ignores them too (the client secret never goes to a proxy).
      const again = await env.login();
      expect(again.callback.status).toBe(302);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(evil.requests).toEqual([]);
  });

  it('I8: an oversized API response is cut off by the size cap', async () => {
    const { browser } = await env.login();
    const res = await browser.request(`${env.appUrl}/api/call?url=${encodeURIComponent('/v1/big')}`, { headers: json });
    expect(res.status).toBe(500);
    expect(env.logger.lines.some((l) => l.includes('maxContentLength'))).toBe(true);
  });

  it('I9: the bearer token is sent to the configured API only, and redacted from errors the app sees', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const record = (await env.readRecord(sid))!;
    const res = await browser.request(`${env.appUrl}/api/call?url=${encodeURIComponent('/v1/redirect')}`, { headers: json });
    expect(res.status).toBe(302);
    const last = env.api.authorizations.at(-1)!;
    expect(last.authorization).toBe(`Bearer ${record.access_token}`);
    expect(env.logger.lines.join('\n')).not.toContain(record.access_token);
  });

  it("I10 (rule 12): an error the app inspects or serializes holds no token, not its own and not another user's in flight", async () => {
    const alice = (await env.login(undefined, { user: 'alice' })).browser;
    const bob = new TestBrowser();
    await env.login(bob, { user: 'bob' });
    const aliceToken = (await env.readRecord(env.sid(alice)))!.access_token;
    const bobToken = (await env.readRecord(env.sid(bob)))!.access_token;
    // Bob's request stays in flight on a pooled socket while Alice's fails.
    const bobPending = bob.request(`${env.appUrl}/api/inspect-error?url=${encodeURIComponent('/v1/hang')}`, { headers: json });
    await new Promise((r) => setTimeout(r, 100));
    for (const url of ['/v1/reset', '/v1/big', '/v1/redirect']) {
      const res = await alice.request(`${env.appUrl}/api/inspect-error?url=${encodeURIComponent(url)}`, { headers: json });
      const body = JSON.parse(res.body);
      expect(body.inspected.length).toBeGreaterThan(100);
      expect(res.body).not.toContain(aliceToken);
      expect(res.body).not.toContain(bobToken);
      expect(res.body).not.toContain('Bearer ');
    }
    const bobRes = JSON.parse((await bobPending).body);
    expect(bobRes.code).toBe('upstream_timeout');
    expect(JSON.stringify(bobRes)).not.toContain(bobToken);
  });

  it('I11 (rule 12): a hanging API gives 504 upstream_timeout within the deadline', async () => {
    const { browser } = await env.login();
    const started = Date.now();
    const res = await browser.request(`${env.appUrl}/api/call?url=${encodeURIComponent('/v1/hang')}`, { headers: json });
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body)).toEqual({ error: 'upstream_timeout' });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('I12 (rule 12): a slow-drip API body is cut off by the overall deadline (504)', async () => {
    const { browser } = await env.login();
    const started = Date.now();
    const res = await browser.request(`${env.appUrl}/api/call?url=${encodeURIComponent('/v1/drip')}`, { headers: json });
    expect(res.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('H: logout returnTo without an end-session endpoint (rule 9)', () => {
  let plain: TestEnv;
  beforeAll(async () => {
    // Explicit endpoints without end_session_endpoint: logout redirects to returnTo itself.
    plain = await createEnv({
      redis: env.redis,
      oauth: (p) => ({
        issuer: undefined,
        authorizationEndpoint: `${p.issuer}/auth`,
        tokenEndpoint: `${p.issuer}/token`,
        revocationEndpoint: `${p.issuer}/token/revocation`,
        scope: ['offline_access', 'email'],
      }),
    });
  });
  afterAll(async () => {
    await plain?.close();
  });

  const logout = (browser: TestBrowser, returnTo: string) =>
    browser.request(`${plain.appUrl}/oauth/logout?returnTo=${encodeURIComponent(returnTo)}`, {
      method: 'POST',
      headers: { origin: plain.appUrl, 'sec-fetch-site': 'same-origin' },
    });

  it('H6: a same-origin returnTo is honoured (the redirect below is the returnTo itself, not a provider page)', async () => {
    const { browser } = await plain.login();
    const res = await logout(browser, '/goodbye?x=1');
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/goodbye?x=1');
  });

  it.each([
    'https://evil.example/',
    '//evil.example/x',
    '/\\evil.example',
    '\\\\evil.example',
    '/\t/evil.example',
    'http:evil.example',
    'https://127.0.0.1.evil.example/',
    '/%2F%2Fevil.example',
    'javascript:alert(1)',
  ])('H7: a foreign logout returnTo %j falls back to a path on this app', async (returnTo) => {
    const { browser } = await plain.login();
    const res = await logout(browser, returnTo);
    expect(res.status).toBe(302);
    const raw = res.headers.get('location')!;
    expect(raw.startsWith('/')).toBe(true);
    expect(raw.startsWith('//')).toBe(false);
    expect(raw).not.toMatch(/[\\\s]/);
    expect(new URL(raw, plain.appUrl).origin).toBe(plain.appUrl);
  });
});
