import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { AuthorizationServer } from '../../lib/authorization-server.js';
import { resolveConfig } from '../../lib/config.js';
import { ProviderError, safeOAuthErrorCode } from '../../lib/errors.js';
import { MemoryTokenStore } from '../../lib/index.js';
import type { OAuthEventMap } from '../../lib/events.js';
import { TestBrowser } from '../helpers/browser.js';
import { CapturedLogger, ENCRYPTION_KEY, createEnv, type TestEnv } from '../helpers/env.js';
import { beginLogin, callbackUrl, expectNoSecrets, expectNothingLost, snapshot } from '../helpers/assertions.js';
import { CLIENT_SECRET, type ReceivedRequest, type TokenFault } from '../helpers/provider.js';

/**
 * Issue 9, item 8: a provider's `error` string reaches a log line, an event, an error message or a
 * response only through safeOAuthErrorCode (`^[a-z_]{1,40}$`, anything else `invalid_response`).
 */

/** `error` values that are not plain codes: each must come out as `invalid_response`. */
const NOT_CODES: Array<[string, unknown]> = [
  ['with a space', 'invalid grant'],
  ['upper case', 'INVALID_GRANT'],
  ['41 characters', 'a'.repeat(41)],
  ['unicode', 'invalid_grànt'],
  ['a digit', 'invalid_grant2'],
  ['CRLF', 'invalid_grant\r\nx-injected: 1'],
  ['empty', ''],
  ['a number', 42],
  ['an object', { code: 'invalid_grant' }],
];

const eventNames: Array<keyof OAuthEventMap> = ['login', 'refresh', 'refresh_failed', 'logout', 'login_failed'];

describe('D: a hostile or buggy provider echoes credentials as its `error` (issue 9 item 8)', () => {
  let env: TestEnv;
  let events: Array<{ name: string; payload: unknown }>;

  beforeAll(async () => {
    env = await createEnv({ oauth: { httpTimeout: 2000 } });
    events = [];
    for (const name of eventNames) env.auth.events.on(name, (payload: unknown) => events.push({ name, payload }));
  });
  afterAll(async () => {
    await env?.close();
  });
  afterEach(() => {
    env.provider.setTokenFault(undefined);
    env.provider.setPathFault('/token/revocation', undefined);
    events.length = 0;
  });

  const echo = (status: number, pick: (r: ReceivedRequest) => string | undefined, seen: string[]): TokenFault => ({
    kind: 'respond',
    answer: (r) => {
      const value = pick(r) ?? '';
      seen.push(value);
      return { status, body: { error: value, error_description: value } };
    },
  });

  for (const status of [400, 200]) {
    for (const [what, pick] of [
      ['the code', (r: ReceivedRequest) => r.form.get('code') ?? undefined],
      ['the client secret', (r: ReceivedRequest) => r.clientSecret],
    ] as const) {
      it(`D24: code exchange, ${what} echoed as \`error\` with status ${status}: 502 invalid_response, echoed value nowhere, nothing lost`, async () => {
        const { browser: victim } = await env.login();
        const other = new TestBrowser();
        const { state } = await beginLogin(env, other);
        const before = await snapshot(env, victim);
        const seen: string[] = [];
        env.provider.setTokenFault(echo(status, pick, seen), 'authorization_code');
        const code = `stolen-code-${'Q'.repeat(20)}-${Date.now()}`;
        const res = await other.request(callbackUrl(env, `code=${code}&state=${state}&iss=${encodeURIComponent(env.provider.issuer)}`));
        env.provider.setTokenFault(undefined);
        expect(seen).toHaveLength(1);
        expect(seen[0]!.length).toBeGreaterThan(10);
        expect(res.status).toBe(502);
        const failed = events.filter((e) => e.name === 'login_failed');
        expect(failed).toEqual([{ name: 'login_failed', payload: { provider: 'default', reason: 'invalid_response' } }]);
        expectNoSecrets(env, [...seen, code, CLIENT_SECRET], [res.body, JSON.stringify(events)]);
        // The victim's own login (another browser) is untouched.
        await expectNothingLost(env, victim, before, await victim.request(`${env.appUrl}/`), { tokenRequests: 1 });
      });
    }

    it(`D25: refresh, the refresh token echoed as \`error\` with status ${status}: reason invalid_response, token nowhere, record kept`, async () => {
      const { browser } = await env.login();
      const sid = env.sid(browser);
      const record = (await env.readRecord(sid))!;
      await env.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5 });
      const raw = await env.rawRecord(sid);
      const seen: string[] = [];
      env.provider.setTokenFault(
        echo(status, (r) => r.form.get('refresh_token') ?? undefined, seen),
        'refresh_token',
      );
      const res = await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
      env.provider.setTokenFault(undefined);
      expect(seen).toEqual([record.refresh_token]);
      expect(res.status).toBe(502);
      const failed = events.filter((e) => e.name === 'refresh_failed');
      expect(failed).toHaveLength(1);
      expect((failed[0]!.payload as { reason: string }).reason).toBe('invalid_response');
      expect(env.logger.lines.some((l) => l.includes('token refresh failed') && l.includes('invalid_response'))).toBe(true);
      expectNoSecrets(env, [record.refresh_token!, record.access_token, CLIENT_SECRET], [res.body, JSON.stringify(events)]);
      // Not invalid_grant: the login is kept, and the next refresh works.
      expect(await env.rawRecord(sid)).toBe(raw);
      const again = await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
      expect(again.status).toBe(200);
    });
  }

  for (const status of [400, 503]) {
    it(`D26: revocation at logout, the token echoed as \`error\` with status ${status}: logout completes, token nowhere`, async () => {
      const { browser } = await env.login();
      const sid = env.sid(browser);
      const record = (await env.readRecord(sid))!;
      const seen: string[] = [];
      env.provider.setPathFault(
        '/token/revocation',
        echo(status, (r) => r.form.get('token') ?? undefined, seen),
      );
      const res = await browser.request(`${env.appUrl}/oauth/logout`, {
        method: 'POST',
        headers: { origin: env.appUrl, 'sec-fetch-site': 'same-origin' },
      });
      expect(res.status).toBe(302);
      expect(seen).toEqual([record.refresh_token]);
      expect(await env.rawRecord(sid)).toBeNull();
      expectNoSecrets(env, [...seen, record.access_token, CLIENT_SECRET], [res.body, JSON.stringify(events)]);
    });
  }

  it('D27: a plain code the provider sends is still kept: invalid_grant at refresh ends the login (401)', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const record = (await env.readRecord(sid))!;
    await env.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5 });
    env.provider.setTokenFault({ kind: 'respond', answer: () => ({ status: 200, body: { error: 'bad_refresh_token' } }) }, 'refresh_token');
    const res = await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toEqual({ error: 'login_required' });
    expect(events.find((e) => e.name === 'refresh_failed')?.payload).toMatchObject({ reason: 'invalid_grant' });
  });
});

/** A token and revocation endpoint on port 0 that answers whatever the test says, from what it received. */
async function hostileEndpoint() {
  let answer: (form: URLSearchParams, secret: string) => { status: number; body: unknown } = () => ({ status: 500, body: {} });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
      const secret = decodeURIComponent(basic.slice(basic.indexOf(':') + 1).replace(/\+/g, ' '));
      const { status, body } = answer(form, secret);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    set(fn: typeof answer) {
      answer = fn;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('D: provider `error` values reach errors only as safe codes (issue 9 item 8)', () => {
  const secret = 'client-secret: "invalid_grant" with spaces';
  let hostile: Awaited<ReturnType<typeof hostileEndpoint>>;
  let server: AuthorizationServer;

  beforeAll(async () => {
    hostile = await hostileEndpoint();
    const cfg = resolveConfig({
      authorizationEndpoint: `${hostile.base}/auth`,
      tokenEndpoint: `${hostile.base}/token`,
      revocationEndpoint: `${hostile.base}/revoke`,
      clientId: 'client',
      clientSecret: secret,
      redirectUri: 'http://localhost:3000/oauth/callback',
      apiBaseUrl: 'http://localhost:4000',
      tokenStore: new MemoryTokenStore(),
      encryptionKey: ENCRYPTION_KEY,
      logger: new CapturedLogger(),
      httpTimeout: 2000,
    });
    server = new AuthorizationServer(cfg);
    await server.load();
  });
  afterAll(async () => {
    server?.stop();
    await hostile?.close();
  });

  const refreshToken = 'rt-Zk3vX9QpL2mN8bW4cY7dT1fH6jR0sA5e';
  const code = 'code-Hq8LmN2pX7vB4zK9wR3tY6uE1oI5aS0d';
  const operations: Array<[string, () => Promise<unknown>]> = [
    ['code exchange', () => server.exchangeCode({ code, state: 's' }, { state: 's', codeVerifier: 'v'.repeat(43), nonce: undefined })],
    ['refresh', () => server.refresh(refreshToken)],
    ['revocation', () => server.revoke(refreshToken, 'refresh_token')],
  ];
  const sentCredential = (form: URLSearchParams, clientSecret: string) =>
    form.get('code') ?? form.get('refresh_token') ?? form.get('token') ?? clientSecret;

  async function failure(op: () => Promise<unknown>): Promise<ProviderError> {
    const err = await op().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }

  /** Everything an app could log of the error. */
  const dump = (err: ProviderError) =>
    [err.message, String(err.stack), inspect(err, { depth: 12 }), JSON.stringify(err), String(err.oauthError)].join('\n');

  for (const [name, op] of operations) {
    for (const status of [400, 401, 200]) {
      if (name === 'revocation' && status === 200) continue; // a 200 is a successful revocation
      for (const [what, pick] of [
        ['the credential it received', sentCredential],
        ['the client secret', (_f: URLSearchParams, s: string) => s],
      ] as const) {
        it(`D28: ${name}, ${what} as \`error\` (status ${status}): oauthError invalid_response, in no message`, async () => {
          const seen: string[] = [];
          hostile.set((form, s) => {
            const v = pick(form, s);
            seen.push(v);
            return { status, body: { error: v, error_description: v, code: v } };
          });
          const err = await failure(op);
          expect(seen).toHaveLength(1);
          expect(err.oauthError).toBe('invalid_response');
          expect(err.code).toBe('token_endpoint_error');
          const text = dump(err);
          for (const s of [...seen, secret, refreshToken, code]) expect(text.includes(s) ? `leaked ${s.slice(0, 8)}` : 'clean').toBe('clean');
        });
      }
    }

    for (const [label, value] of NOT_CODES) {
      it(`D29: ${name}, an \`error\` ${label} becomes invalid_response`, async () => {
        hostile.set(() => ({ status: 400, body: { error: value } }));
        const err = await failure(op);
        expect(err.oauthError).toBe('invalid_response');
        expect(err.message).toMatch(/invalid_response/);
        if (typeof value === 'string' && value.length > 0) expect(err.message.includes(value)).toBe(false);
      });
    }

    it(`D30: ${name}, a plain registered code is kept (invalid_grant, and GitHub's 200 bad_refresh_token maps to it)`, async () => {
      hostile.set(() => ({ status: 400, body: { error: 'invalid_grant' } }));
      expect((await failure(op)).oauthError).toBe('invalid_grant');
      if (name === 'revocation') return;
      hostile.set(() => ({ status: 200, body: { error: 'bad_refresh_token' } }));
      expect((await failure(op)).oauthError).toBe('invalid_grant');
      hostile.set(() => ({ status: 200, body: { error: 'constructor' } }));
      expect((await failure(op)).oauthError).toBe('constructor');
    });
  }

  it('D30: safeOAuthErrorCode keeps only ^[a-z_]{1,40}$', () => {
    expect(safeOAuthErrorCode('invalid_grant')).toBe('invalid_grant');
    expect(safeOAuthErrorCode('a'.repeat(40))).toBe('a'.repeat(40));
    for (const [, v] of NOT_CODES) expect(safeOAuthErrorCode(v)).toBe('invalid_response');
    expect(new ProviderError('token_endpoint_error', 'x', { oauthError: refreshToken }).oauthError).toBe('invalid_response');
  });
});
