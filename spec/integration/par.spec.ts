import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { clearsSession } from '../helpers/assertions.js';

const json = { accept: 'application/json' };
let par: TestEnv;
let required: TestEnv;

beforeAll(async () => {
  [par, required] = await Promise.all([createEnv({ oauth: { pushedAuthorizationRequests: true } }), createEnv({ provider: { requirePar: true } })]);
});
afterAll(async () => {
  await Promise.all([par?.close(), required?.close()]);
});

describe('N: pushed authorization requests, RFC 9126 (rules 1, 3)', () => {
  it('N9: with pushedAuthorizationRequests the browser carries only client_id and request_uri; the login completes', async () => {
    const browser = new TestBrowser();
    const start = await browser.request(`${par.appUrl}/oauth/login`);
    expect(start.status).toBe(302);
    const url = new URL(start.location!);
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    expect(par.provider.counters.parRequests).toBe(1);
    const { callback } = await par.login(browser);
    expect(callback.status).toBe(302);
    expect((await browser.request(`${par.appUrl}/api/me`, { headers: json })).status).toBe(200);
  });

  it('N10: a provider whose metadata requires PAR gets it without the option', async () => {
    const res = await new TestBrowser().request(`${required.appUrl}/oauth/login`);
    expect([...new URL(res.location!).searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    const { browser, callback } = await required.login();
    expect(callback.status).toBe(302);
    expect((await browser.request(`${required.appUrl}/api/me`, { headers: json })).status).toBe(200);
  });

  it('N11: a failing PAR endpoint is a 503 (down) or 502 (bad answer); no login is stored, a live login is untouched', async () => {
    const { browser } = await par.login();
    const sid = par.sid(browser);
    const raw = await par.rawRecord(sid);
    for (const [fault, status] of [
      [{ kind: 'status', status: 500, body: '{"error":"server_error"}' }, 503],
      [{ kind: 'status', status: 400, body: '{"error":"invalid_request"}' }, 502],
      [{ kind: 'close' }, 503],
    ] as const) {
      par.provider.setPathFault('/request', fault);
      const res = await browser.request(`${par.appUrl}/oauth/login`, { headers: json });
      par.provider.setPathFault('/request', undefined);
      expect(res.status).toBe(status);
      if (status === 503) expect(res.headers.get('retry-after')).toBeTruthy();
      expect(res.setCookies.filter(clearsSession)).toEqual([]);
      expect(par.sid(browser)).toBe(sid);
      expect(await par.rawRecord(sid)).toBe(raw);
      expect((await browser.request(`${par.appUrl}/api/me`, { headers: json })).status).toBe(200);
    }
  });

  it('N12: pushedAuthorizationRequests: false against a provider that requires PAR is a configuration error', async () => {
    const env = await createEnv({ sharing: required, oauth: { pushedAuthorizationRequests: false }, skipReady: true });
    try {
      await expect(env.auth.ready()).rejects.toThrow(/requires pushed authorization requests/);
    } finally {
      await env.close();
    }
  });
});
