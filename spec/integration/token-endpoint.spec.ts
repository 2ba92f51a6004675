import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { SignJWT, generateKeyPair } from 'jose';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { freePort } from '../helpers/global-setup.js';
import { beginLogin, callbackUrl, expectNothingLost, snapshot } from '../helpers/assertions.js';
import { CLIENT_SECRET, type TokenFault } from '../helpers/provider.js';
import { startRecorder } from '../helpers/recorder.js';

// Without `openid`, a token response needs no ID token, so each fault below is judged on its own.
let env: TestEnv;
let victim: TestBrowser;

beforeAll(async () => {
  env = await createEnv({ oauth: { scope: ['offline_access', 'email'], httpTimeout: 700 } });
});
afterAll(async () => {
  await env?.close();
});
beforeEach(async () => {
  env.provider.setTokenFault(undefined);
  env.provider.setTokenRewrite(undefined);
  victim = (await env.login()).browser;
});
afterEach(() => {
  env.provider.setTokenFault(undefined);
  env.provider.setTokenRewrite(undefined);
});

/** Sends a fresh login's callback to a token endpoint that misbehaves in the given way. */
async function callbackAgainst(fault: TokenFault) {
  const { state } = await beginLogin(env, victim);
  const before = await snapshot(env, victim);
  env.provider.setTokenFault(fault, 'authorization_code');
  const started = Date.now();
  const res = await victim.request(callbackUrl(env, `code=some-code&state=${state}&iss=${encodeURIComponent(env.provider.issuer)}`));
  const elapsed = Date.now() - started;
  env.provider.setTokenFault(undefined);
  return { res, before, elapsed };
}

const json = (body: unknown, status = 200): TokenFault => ({ kind: 'status', status, body: JSON.stringify(body) });

describe('D: token endpoint faults during the code exchange (rule 3, failure table)', () => {
  const cases: Array<[string, TokenFault, number]> = [
    ['D1: HTML with status 200', { kind: 'status', status: 200, body: '<html>hello</html>', contentType: 'text/html' }, 502],
    ['D2: JSON null', json(null), 502],
    ['D3: JSON array', json([{ access_token: 'x', token_type: 'bearer' }]), 502],
    ['D4: missing access_token', json({ token_type: 'bearer', expires_in: 60 }), 502],
    ['D5: token_type mac', json({ access_token: 'x', token_type: 'mac', expires_in: 60 }), 502],
    ['D6: expires_in not a number', json({ access_token: 'x', token_type: 'bearer', expires_in: 'soon' }), 502],
    ['D6b: expires_in as a string with junk ("3600abc")', json({ access_token: 'x', token_type: 'bearer', expires_in: '3600abc' }), 502],
    ['D6c: expires_in as an array', json({ access_token: 'x', token_type: 'bearer', expires_in: [3600] }), 502],
    ['D7: negative expires_in', json({ access_token: 'x', token_type: 'bearer', expires_in: -5 }), 502],
    ['D8: invalid_grant', json({ error: 'invalid_grant' }, 400), 400],
    ['D9: invalid_client', json({ error: 'invalid_client' }, 401), 502],
    ['D10: 500', { kind: 'status', status: 500, body: 'oops', contentType: 'text/plain' }, 502],
    ['D11: 503 JSON', json({ error: 'temporarily_unavailable' }, 503), 502],
    ['D12: connection closed', { kind: 'close' }, 502],
    ['D14: huge body', { kind: 'huge', bytes: 3 * 1024 * 1024 }, 502],
    ['D15: access_token not a string', json({ access_token: 12345, token_type: 'bearer' }), 502],
    ['D22: an OAuth error sent with status 200 (GitHub style)', json({ error: 'bad_verification_code' }), 400],
    ['D23: invalid_client sent with status 200', json({ error: 'incorrect_client_credentials' }), 502],
  ];
  for (const [name, fault, status] of cases) {
    it(`${name} gives ${status}, and nothing is lost`, async () => {
      const { res, before } = await callbackAgainst(fault);
      expect(res.status).toBe(status);
      await expectNothingLost(env, victim, before, res, { tokenRequests: 1 });
    });
  }

  it.each([307, 302])(
    'D13: a %i redirect from the token endpoint to a live server is not followed: 502, the target receives nothing, nothing is lost',
    async (status) => {
      const recorder = await startRecorder();
      try {
        const { res, before } = await callbackAgainst({ kind: 'status', status, body: '', headers: { location: `${recorder.url}/token` } });
        expect(res.status).toBe(502);
        expect(recorder.requests).toEqual([]);
        await expectNothingLost(env, victim, before, res, { tokenRequests: 1 });
      } finally {
        await recorder.close();
      }
    },
  );

  it('D31: a refresh whose token endpoint redirects to a live server is not followed: the target receives nothing, tokens kept', async () => {
    const recorder = await startRecorder();
    try {
      const sid = env.sid(victim);
      const record = (await env.readRecord(sid))!;
      // Expiring soon but still valid: a failed refresh keeps using it.
      const now = Math.floor(Date.now() / 1000);
      await env.writeRecord(sid, { ...record, expires_at: now + 5, updated_at: now - 3600 });
      const before = await snapshot(env, victim);
      env.provider.setTokenFault({ kind: 'status', status: 307, body: '', headers: { location: `${recorder.url}/token` } }, 'refresh_token');
      const res = await victim.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
      env.provider.setTokenFault(undefined);
      expect(env.provider.counters.tokenRequests - before.tokenRequests).toBe(1); // the refresh was attempted
      expect(recorder.requests).toEqual([]);
      expect(res.status).toBe(200);
      expect(await env.rawRecord(sid)).toBe(before.raw);
      expect(env.logger.lines.join('\n')).not.toContain(record.refresh_token!);
    } finally {
      await recorder.close();
    }
  });

  it('D32: a chunked response (no Content-Length) over maxResponseBytes is cut off by the size cap alone (502), nothing is lost', async () => {
    // Every field is well-formed and the access token is short: only the streamed size can refuse this answer.
    const body = JSON.stringify({
      access_token: 'short-valid-looking-access-token',
      token_type: 'bearer',
      expires_in: 3600,
      padding: 'p'.repeat(1536 * 1024),
    });
    const { res, before } = await callbackAgainst({
      kind: 'status',
      status: 200,
      body,
      headers: { 'transfer-encoding': 'chunked' },
    });
    expect(res.status).toBe(502);
    await expectNothingLost(env, victim, before, res, { tokenRequests: 1 });
    expect(res.body).not.toContain(CLIENT_SECRET);
  });

  it('D33: the same well-formed response under the cap is accepted (the D32 answer is refused for its size only)', async () => {
    const body = JSON.stringify({
      access_token: 'short-valid-looking-access-token',
      token_type: 'bearer',
      expires_in: 3600,
      padding: 'p'.repeat(64 * 1024),
    });
    const browser = new TestBrowser();
    const cb = await env.startLogin(browser);
    env.provider.setTokenFault({ kind: 'status', status: 200, body, headers: { 'transfer-encoding': 'chunked' } }, 'authorization_code');
    const res = await browser.request(cb);
    env.provider.setTokenFault(undefined);
    expect(res.status).toBe(302);
    expect((await env.readRecord(env.sid(browser)))!.access_token).toBe('short-valid-looking-access-token');
  });

  it('D16: a hanging token endpoint gives 504 within the deadline', async () => {
    const { res, before, elapsed } = await callbackAgainst({ kind: 'hang' });
    expect(res.status).toBe(504);
    expect(elapsed).toBeLessThan(3000);
    await expectNothingLost(env, victim, before, res, { tokenRequests: 1 });
  });

  it('D17: a slow-drip body is cut off by the overall deadline (504)', async () => {
    const { res, before, elapsed } = await callbackAgainst({ kind: 'drip', intervalMs: 100 });
    expect(res.status).toBe(504);
    expect(elapsed).toBeLessThan(3000);
    await expectNothingLost(env, victim, before, res, { tokenRequests: 1 });
  });

  it('D18: connection refused gives 502, and no session is created', async () => {
    const closed = await freePort();
    const refusing = await createEnv({
      redis: env.redis,
      oauth: (p) => ({
        issuer: undefined,
        authorizationEndpoint: `${p.issuer}/auth`,
        tokenEndpoint: `http://127.0.0.1:${closed}/token`,
        scope: ['offline_access', 'email'],
      }),
    });
    try {
      const browser = new TestBrowser();
      const cb = await refusing.startLogin(browser);
      const sid = refusing.sid(browser);
      const res = await browser.request(cb);
      expect(res.status).toBe(502);
      expect(refusing.sid(browser)).toBe(sid);
      expect(await refusing.rawRecord(sid)).toBeNull();
    } finally {
      await refusing.close();
    }
  });

  it('D19: __proto__ keys in the token response pollute nothing and are not stored', async () => {
    env.provider.setTokenRewrite(
      (body) => JSON.parse(JSON.stringify(body).replace(/^\{/, '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted2":true}},')),
      'authorization_code',
    );
    const browser = new TestBrowser();
    const cb = await env.startLogin(browser);
    const res = await browser.request(cb);
    expect(res.status).toBe(302);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted2).toBeUndefined();
    const record = (await env.readRecord(env.sid(browser)))!;
    const allowed = ['access_token', 'expires_at', 'refresh_token', 'scope', 'token_type', 'updated_at', 'version', 'sub', 'id_token'];
    for (const key of Object.keys(record)) expect(allowed).toContain(key);
    expect(Object.prototype.hasOwnProperty.call(record, '__proto__')).toBe(false);
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype);
  });
});

describe('D: ID token validation, openid in scope (rule 4)', () => {
  let oidcEnv: TestEnv;
  beforeAll(async () => {
    oidcEnv = await createEnv({ redis: env.redis });
  });
  afterAll(async () => {
    await oidcEnv?.close();
  });

  it('D20: an ID token signed by another key is rejected with 502 even when every claim is right', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const browser = new TestBrowser();
    const cb = await oidcEnv.startLogin(browser);
    const sidBefore = oidcEnv.sid(browser);
    // The right nonce, issuer, audience and times: only the signature is wrong.
    const sess = JSON.parse((await oidcEnv.redis.get(`${oidcEnv.prefix}sess:${sidBefore}`))!);
    const nonce = (Object.values(sess.oauth.tx)[0] as { nonce: string }).nonce;
    const forged = await new SignJWT({ sub: 'alice', nonce })
      .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
      .setIssuer(oidcEnv.provider.issuer)
      .setAudience('test-client')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    oidcEnv.provider.setTokenRewrite((body) => ({ ...body, id_token: forged }), 'authorization_code');
    const res = await browser.request(cb);
    oidcEnv.provider.setTokenRewrite(undefined);
    expect(res.status).toBe(502);
    expect(oidcEnv.sid(browser)).toBe(sidBefore);
    expect(await oidcEnv.rawRecord(sidBefore)).toBeNull();
  });

  it('D21: a token response without the expected ID token is rejected', async () => {
    oidcEnv.provider.setTokenRewrite(({ id_token: _drop, ...rest }) => rest, 'authorization_code');
    const browser = new TestBrowser();
    const cb = await oidcEnv.startLogin(browser);
    const res = await browser.request(cb);
    oidcEnv.provider.setTokenRewrite(undefined);
    expect(res.status).toBe(502);
    expect(await oidcEnv.rawRecord(oidcEnv.sid(browser))).toBeNull();
  });
});
