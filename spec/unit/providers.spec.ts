import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  ConfigError,
  MemoryTokenStore,
  oauth,
  oauthErrorHandler,
  providers,
  requireAuth,
  type OAuthMiddleware,
  type OAuthOptions,
  type ProviderPreset,
} from '../../lib/index.js';
import { RecordCipher, type TokenRecord } from '../../lib/token-record.js';
import { TestBrowser } from '../helpers/browser.js';
import { CapturedLogger } from '../helpers/env.js';

/**
 * Each preset logs in, through real HTTP, against a local server that answers the way that provider's
 * documentation says it does (paths, client authentication, token response format, ID token claims).
 */

const CLIENT_ID = 'preset-client-id';
const CLIENT_SECRET = 'preset client secret/+=&';
const ENCRYPTION_KEY = '+K72QCdH8p7GF+wfglCA5Uubcvjcx+KDP3vzg8Qk6wU=';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

type Json = Record<string, unknown>;

interface CodeEntry {
  challenge: string;
  redirectUri: string;
  nonce: string | undefined;
  scope: string | undefined;
}

interface TokenRequest {
  headers: http.IncomingHttpHeaders;
  body: URLSearchParams;
}

interface TokenContext {
  grant: 'authorization_code' | 'refresh_token';
  req: TokenRequest;
  code?: CodeEntry;
  /** Signs an ID token with the server's key; iss, aud, iat and exp are filled in. */
  idToken(claims: Json): Promise<string>;
  /** Makes a token value and remembers it as valid for the API. */
  mint(prefix: string): string;
}

interface FakeOptions {
  /** Path of the authorization endpoint (for presets built from a base URL) or the one advertised by discovery. */
  authorizePath: string;
  tokenPath: string;
  /** OpenID Connect discovery: the issuer path under the origin (`''` for the origin itself). */
  oidcIssuerPath?: string;
  clientAuth: 'client_secret_basic' | 'client_secret_post';
  /** The API prefix the server answers `GET {apiPrefix}/me` on, with the bearer token. */
  apiPrefix: string;
  respond(ctx: TokenContext): Promise<{ status?: number; json?: Json; form?: Record<string, string> }>;
  /** GitHub answers form-encoded unless the client asks for JSON. */
  formUnlessAcceptJson?: boolean;
}

interface Fake {
  origin: string;
  issuer: string;
  authRequests: URLSearchParams[];
  tokenRequests: TokenRequest[];
  apiCalls: string[];
  issued: Set<string>;
  refreshTokens: Set<string>;
  close(): Promise<void>;
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

let signingKey: CryptoKey;
let publicJwk: JWK;
beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  signingKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'local-1', alg: 'RS256', use: 'sig' };
});

async function startFake(opts: FakeOptions): Promise<Fake> {
  const server = http.createServer();
  const origin = await listen(server);
  const issuer = `${origin}${opts.oidcIssuerPath ?? ''}`;
  const codes = new Map<string, CodeEntry>();
  const fake: Fake = {
    origin,
    issuer,
    authRequests: [],
    tokenRequests: [],
    apiCalls: [],
    issued: new Set(),
    refreshTokens: new Set(),
    close: () => closeServer(server),
  };
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };

  server.on('request', async (req, res) => {
    const url = new URL(req.url ?? '/', origin);
    if (opts.oidcIssuerPath !== undefined && req.method === 'GET' && url.pathname === `${opts.oidcIssuerPath}/.well-known/openid-configuration`) {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${origin}${opts.authorizePath}`,
        token_endpoint: `${origin}${opts.tokenPath}`,
        jwks_uri: `${origin}/keys`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (req.method === 'GET' && url.pathname === '/keys') return json(res, 200, { keys: [publicJwk] });
    if (req.method === 'GET' && url.pathname === opts.authorizePath) {
      const q = url.searchParams;
      fake.authRequests.push(q);
      if (q.get('client_id') !== CLIENT_ID || q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256') {
        return json(res, 400, { error: 'invalid_request' });
      }
      const code = randomBytes(12).toString('base64url');
      codes.set(code, {
        challenge: q.get('code_challenge')!,
        redirectUri: q.get('redirect_uri')!,
        nonce: q.get('nonce') ?? undefined,
        scope: q.get('scope') ?? undefined,
      });
      const back = new URL(q.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state')!);
      res.writeHead(302, { location: back.href });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === opts.tokenPath) {
      const body = new URLSearchParams(await readBody(req));
      const treq: TokenRequest = { headers: req.headers, body };
      fake.tokenRequests.push(treq);
      const asJson = !opts.formUnlessAcceptJson || (req.headers.accept ?? '').includes('application/json');
      const send = (status: number, payload: Record<string, unknown>) => {
        if (asJson) return json(res, status, payload);
        res.writeHead(status, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
        res.end(new URLSearchParams(Object.entries(payload).map(([k, v]) => [k, String(v)])).toString());
      };
      // Client authentication exactly as the provider documents it.
      let id: string | null;
      let secret: string | null;
      if (opts.clientAuth === 'client_secret_basic') {
        const m = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
        const [u, p] = m ? Buffer.from(m[1]!, 'base64').toString('utf8').split(':') : [];
        id = u === undefined ? null : decodeURIComponent(u.replace(/\+/g, ' '));
        secret = p === undefined ? null : decodeURIComponent(p.replace(/\+/g, ' '));
        if (body.has('client_secret')) return send(400, { error: 'invalid_request' });
      } else {
        if (req.headers.authorization) return send(400, { error: 'invalid_request' });
        id = body.get('client_id');
        secret = body.get('client_secret');
      }
      if (id !== CLIENT_ID || secret !== CLIENT_SECRET) return send(401, { error: 'invalid_client' });
      const grant = body.get('grant_type');
      const ctx: TokenContext = {
        grant: grant as TokenContext['grant'],
        req: treq,
        idToken: (claims) =>
          new SignJWT({ ...claims })
            .setProtectedHeader({ alg: 'RS256', kid: 'local-1', typ: 'JWT' })
            .setIssuer(issuer)
            .setAudience(CLIENT_ID)
            .setIssuedAt()
            .setExpirationTime('1h')
            .sign(signingKey),
        mint: (prefix) => {
          const t = `${prefix}${randomBytes(18).toString('base64url')}`;
          fake.issued.add(t);
          return t;
        },
      };
      if (grant === 'authorization_code') {
        const entry = codes.get(body.get('code') ?? '');
        codes.delete(body.get('code') ?? '');
        const challenge = createHash('sha256')
          .update(body.get('code_verifier') ?? '')
          .digest('base64url');
        if (!entry || entry.challenge !== challenge || entry.redirectUri !== body.get('redirect_uri')) return send(400, { error: 'invalid_grant' });
        ctx.code = entry;
      } else if (grant === 'refresh_token') {
        if (!fake.refreshTokens.has(body.get('refresh_token') ?? '')) return send(400, { error: 'invalid_grant' });
      } else {
        return send(400, { error: 'unsupported_grant_type' });
      }
      const out = await opts.respond(ctx);
      if (typeof out.json?.refresh_token === 'string') fake.refreshTokens.add(out.json.refresh_token);
      return send(out.status ?? 200, out.json ?? out.form ?? {});
    }
    if (req.method === 'GET' && url.pathname === `${opts.apiPrefix}/me`) {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      fake.apiCalls.push(url.pathname);
      if (!token || !fake.issued.has(token)) return json(res, 401, { error: 'invalid_token' });
      return json(res, 200, { ok: true });
    }
    json(res, 404, { error: 'not_found' });
  });
  return fake;
}

interface App {
  appUrl: string;
  auth: OAuthMiddleware;
  store: MemoryTokenStore;
  logger: CapturedLogger;
  /** Logs in through the provider; returns the browser and the page it ended on. */
  login(): Promise<{ browser: TestBrowser; status: number; body: string }>;
  record(browser: TestBrowser): Promise<TokenRecord | null>;
  close(): Promise<void>;
}

const started: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (started.length) await started.pop()!.close();
});

async function startApp(preset: ProviderPreset, overrides: Partial<OAuthOptions> = {}, apiPath = '/me'): Promise<App> {
  const server = http.createServer();
  const appUrl = await listen(server);
  const store = new MemoryTokenStore();
  const logger = new CapturedLogger();
  const options: OAuthOptions = {
    ...preset,
    redirectUri: `${appUrl}/oauth/callback`,
    tokenStore: store,
    encryptionKey: ENCRYPTION_KEY,
    logger,
    httpTimeout: 3000,
    ...overrides,
  };
  const auth = oauth(options);
  await auth.ready();
  const app = express();
  app.use(session({ secret: 'providers-spec-session-secret', resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax' } }));
  app.use(auth);
  app.get('/', async (req, res) => {
    res.json({ authenticated: req.oauth.isAuthenticated, user: req.oauth.user ?? null, token: (await req.oauth.tokenInfo()) ?? null });
  });
  app.get('/api/me', requireAuth(), async (req, res) => res.json((await req.oauthClient.get(apiPath)).data));
  app.use(oauthErrorHandler());
  server.on('request', app);

  const issuer = options.issuer ?? new URL(options.authorizationEndpoint!).origin;
  const cipher = new RecordCipher([ENCRYPTION_KEY], { issuer, clientId: CLIENT_ID });
  const handle: App = {
    appUrl,
    auth,
    store,
    logger,
    async login() {
      const browser = new TestBrowser();
      const { last } = await browser.follow(`${appUrl}/oauth/login`);
      return { browser, status: last.status, body: last.body };
    },
    async record(browser) {
      const raw = decodeURIComponent(browser.cookies(appUrl).get('connect.sid') ?? '');
      const sid = raw.slice(2, raw.lastIndexOf('.'));
      const sealed = await store.get(sid);
      return sealed ? cipher.open(sid, sealed) : null;
    },
    async close() {
      auth.close();
      await closeServer(server);
    },
  };
  started.push(handle);
  return handle;
}

async function fake(opts: FakeOptions): Promise<Fake> {
  const f = await startFake(opts);
  started.push(f);
  return f;
}

/** Nothing the provider issued, nor the client secret, reached the browser or a log line. */
function expectNoSecrets(app: App, browser: TestBrowser, f: Fake): void {
  const haystack = JSON.stringify(browser.seen) + app.logger.lines.join('\n');
  for (const secret of [...f.issued, ...f.refreshTokens, CLIENT_SECRET]) expect(haystack).not.toContain(secret);
}

describe('providers.github', () => {
  const ghFake = (respond: FakeOptions['respond']) =>
    fake({
      authorizePath: '/login/oauth/authorize',
      tokenPath: '/login/oauth/access_token',
      clientAuth: 'client_secret_post',
      formUnlessAcceptJson: true,
      apiPrefix: '/api/v3',
      respond,
    });

  it('sets GitHub endpoints, scopes and client_secret_post, with api.github.com as the API', () => {
    const p = providers.github({ clientId: 'id', clientSecret: 'secret' });
    expect(p).toEqual({
      clientId: 'id',
      clientSecret: 'secret',
      authorizationEndpoint: 'https://github.com/login/oauth/authorize',
      tokenEndpoint: 'https://github.com/login/oauth/access_token',
      tokenEndpointAuthMethod: 'client_secret_post',
      scope: ['read:user', 'user:email'],
      apiBaseUrl: 'https://api.github.com',
    });
    expect(p.issuer).toBeUndefined();
  });

  it('logs in against a GitHub-format token endpoint (JSON only when asked, comma-separated scope, no expiry)', async () => {
    const f = await ghFake(async (ctx) => ({ json: { access_token: ctx.mint('gho_'), token_type: 'bearer', scope: 'read:user,user:email' } }));
    // The local server really is GitHub-like: without Accept: application/json it answers form-encoded.
    const raw = await fetch(`${f.origin}/login/oauth/access_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, code: 'nope' }).toString(),
    });
    expect(raw.headers.get('content-type')).toContain('application/x-www-form-urlencoded');
    f.tokenRequests.length = 0;

    const app = await startApp(providers.github({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, baseUrl: f.origin }));
    const { browser, status, body } = await app.login();
    expect(status).toBe(200);
    const home = JSON.parse(body);
    expect(home).toMatchObject({ authenticated: true, token: { scope: 'read:user,user:email', refreshable: false } });
    expect(home.token.expiresAt).toBeUndefined();

    const auth = f.authRequests[0]!;
    expect(auth.get('scope')).toBe('read:user user:email');
    expect(auth.has('nonce')).toBe(false);
    const tokenReq = f.tokenRequests[0]!;
    expect(tokenReq.headers.accept).toContain('application/json');
    expect(tokenReq.body.get('client_id')).toBe(CLIENT_ID);

    const record = await app.record(browser);
    expect(record).toMatchObject({ token_type: 'bearer', scope: 'read:user,user:email' });
    expect(f.issued.has(record!.access_token)).toBe(true);
    expect(record!.refresh_token).toBeUndefined();
    expect(record!.expires_at).toBeUndefined();
    // Enterprise base URL: the API is {baseUrl}/api/v3.
    const me = await browser.request(`${app.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(JSON.parse(me.body)).toEqual({ ok: true });
    expect(f.apiCalls).toEqual(['/api/v3/me']);
    expectNoSecrets(app, browser, f);
  });

  it('GitHub App user tokens with expiry: stores the refresh token and refreshes in the documented format', async () => {
    const f = await ghFake(async (ctx) => ({
      json: {
        access_token: ctx.mint('ghu_'),
        // One second, so the next API call refreshes.
        expires_in: 1,
        refresh_token: `ghr_${randomBytes(18).toString('base64url')}`,
        refresh_token_expires_in: 15897600,
        scope: '',
        token_type: 'bearer',
      },
    }));
    const app = await startApp(providers.github({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, baseUrl: f.origin }));
    const { browser } = await app.login();
    const first = await app.record(browser);
    expect(first?.refresh_token).toMatch(/^ghr_/);
    expect(first?.expires_at).toBeDefined();

    await new Promise((r) => setTimeout(r, 1100)); // the token's whole life: one second
    const me = await browser.request(`${app.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(me.status).toBe(200);
    const refresh = f.tokenRequests.find((r) => r.body.get('grant_type') === 'refresh_token');
    expect(refresh?.body.get('refresh_token')).toBe(first!.refresh_token);
    expect(refresh?.body.get('client_secret')).toBe(CLIENT_SECRET);
    const second = await app.record(browser);
    expect(second!.access_token).not.toBe(first!.access_token);
    expect(second!.version).toBe(2);
    expectNoSecrets(app, browser, f);
  });

  it('an error GitHub answers with status 200 (bad_verification_code) stores nothing and does not log in', async () => {
    const f = await ghFake(async () => ({
      status: 200,
      json: { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' },
    }));
    const app = await startApp(providers.github({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, baseUrl: f.origin }));
    const { browser, status } = await app.login();
    // Today this is a 502 (token_endpoint_error); an OAuth error in a 200 body would better be a 400 "login failed".
    expect(status).toBeGreaterThanOrEqual(400);
    expect(app.store.size).toBe(0);
    const home = await browser.request(`${app.appUrl}/`);
    expect(JSON.parse(home.body)).toMatchObject({ authenticated: false });
  });
});

describe('providers.google', () => {
  it('discovers accounts.google.com and asks for offline access with consent', () => {
    expect(providers.google({ clientId: 'id', clientSecret: 's' })).toEqual({
      clientId: 'id',
      clientSecret: 's',
      issuer: 'https://accounts.google.com',
      scope: ['openid', 'email', 'profile'],
      authorizationParams: { access_type: 'offline', prompt: 'consent' },
      apiBaseUrl: 'https://www.googleapis.com',
    });
    expect(providers.google({ clientId: 'id', clientSecret: 's', authorizationParams: { hd: 'example.com' } }).authorizationParams).toEqual({
      access_type: 'offline',
      prompt: 'consent',
      hd: 'example.com',
    });
  });

  it('logs in against a Google-format server (discovery, client_secret_basic, signed ID token, refresh token)', async () => {
    const f = await fake({
      oidcIssuerPath: '',
      authorizePath: '/o/oauth2/v2/auth',
      tokenPath: '/token',
      clientAuth: 'client_secret_basic',
      apiPrefix: '',
      respond: async (ctx) => ({
        json: {
          access_token: ctx.mint('ya29.'),
          expires_in: 3599,
          refresh_token: `1//${randomBytes(18).toString('base64url')}`,
          scope: 'openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile',
          token_type: 'Bearer',
          id_token: await ctx.idToken({
            azp: CLIENT_ID,
            sub: '110169484474386276334',
            email: 'alice@example.com',
            email_verified: true,
            name: 'Alice Example',
            nonce: ctx.code?.nonce,
          }),
        },
      }),
    });
    const app = await startApp({ ...providers.google({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }), issuer: f.issuer, apiBaseUrl: f.origin });
    const { browser, status, body } = await app.login();
    expect(status).toBe(200);
    expect(JSON.parse(body)).toMatchObject({
      authenticated: true,
      user: { sub: '110169484474386276334', email: 'alice@example.com', name: 'Alice Example' },
      token: { refreshable: true },
    });
    const q = f.authRequests[0]!;
    expect(q.get('access_type')).toBe('offline');
    expect(q.get('prompt')).toBe('consent');
    expect(q.get('scope')).toBe('openid email profile');
    expect(q.get('nonce')).toBeTruthy();
    expect(f.tokenRequests[0]!.headers.authorization).toMatch(/^Basic /);
    const record = await app.record(browser);
    expect(record).toMatchObject({ sub: '110169484474386276334', token_type: 'bearer' });
    expect(record!.refresh_token).toMatch(/^1\/\//);
    expectNoSecrets(app, browser, f);
  });
  // Rule 4: the ID token's signature is checked against the provider's JWKS (openid-client checks it only
  // with `enableNonRepudiationChecks`, which the package turns on whenever `openid` is in scope).
  it('rule 4: an ID token signed by a key that is not in the JWKS is rejected', async () => {
    const stranger = await generateKeyPair('RS256');
    const f = await fake({
      oidcIssuerPath: '',
      authorizePath: '/o/oauth2/v2/auth',
      tokenPath: '/token',
      clientAuth: 'client_secret_basic',
      apiPrefix: '',
      respond: async (ctx) => ({
        json: {
          access_token: ctx.mint('ya29.'),
          expires_in: 3599,
          token_type: 'Bearer',
          id_token: await new SignJWT({ sub: 'mallory', nonce: ctx.code?.nonce })
            .setProtectedHeader({ alg: 'RS256', kid: 'local-1' })
            .setIssuer(f.issuer)
            .setAudience(CLIENT_ID)
            .setIssuedAt()
            .setExpirationTime('1h')
            .sign(stranger.privateKey),
        },
      }),
    });
    const app = await startApp({ ...providers.google({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }), issuer: f.issuer, apiBaseUrl: f.origin });
    const { status } = await app.login();
    expect(status).toBe(502);
    expect(app.store.size).toBe(0);
  });
});

describe('providers.microsoft', () => {
  it('builds the tenant issuer, refuses domain names and openid with multi-tenant endpoints', () => {
    expect(providers.microsoft({ clientId: 'id', clientSecret: 's', tenant: TENANT.toUpperCase() })).toMatchObject({
      issuer: `https://login.microsoftonline.com/${TENANT}/v2.0`,
      scope: ['openid', 'profile', 'email', 'offline_access', 'User.Read'],
      tokenEndpointAuthMethod: 'client_secret_post',
      apiBaseUrl: 'https://graph.microsoft.com/v1.0',
    });
    const multi = providers.microsoft({ clientId: 'id', clientSecret: 's', tenant: 'organizations' });
    expect(multi).toMatchObject({
      authorizationEndpoint: 'https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize',
      tokenEndpoint: 'https://login.microsoftonline.com/organizations/oauth2/v2.0/token',
      scope: ['offline_access', 'User.Read'],
    });
    expect(multi.issuer).toBeUndefined();
    expect(() => providers.microsoft({ clientId: 'id', clientSecret: 's', tenant: 'contoso.onmicrosoft.com' })).toThrow(/tenant ID/);
    expect(() => providers.microsoft({ clientId: 'id', clientSecret: 's', tenant: 'common', scope: 'openid User.Read' })).toThrow(ConfigError);
    expect(() => providers.microsoft({ clientId: 'id', clientSecret: 's', tenant: 'x', cloudInstance: 'not a url' })).toThrow(/cloudInstance/);
  });

  it('logs in against a Microsoft-format tenant (v2.0 issuer path, client_secret_post, ID token with tid)', async () => {
    const f = await fake({
      oidcIssuerPath: `/${TENANT}/v2.0`,
      authorizePath: `/${TENANT}/oauth2/v2.0/authorize`,
      tokenPath: `/${TENANT}/oauth2/v2.0/token`,
      clientAuth: 'client_secret_post',
      apiPrefix: '/v1.0',
      respond: async (ctx) => ({
        json: {
          token_type: 'Bearer',
          scope: 'openid profile email User.Read',
          expires_in: 4675,
          ext_expires_in: 4675,
          access_token: ctx.mint('eyJ0eXAi.'),
          refresh_token: `0.AXEA${randomBytes(18).toString('base64url')}`,
          id_token: await ctx.idToken({
            ver: '2.0',
            sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
            oid: '00000000-0000-0000-66f3-3332eca7ea81',
            tid: TENANT,
            name: 'Megan Bowen',
            preferred_username: 'meganb@contoso.com',
            nonce: ctx.code?.nonce,
          }),
        },
      }),
    });
    const app = await startApp(
      providers.microsoft({
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        tenant: TENANT,
        cloudInstance: f.origin,
        apiBaseUrl: `${f.origin}/v1.0`,
      }),
    );
    const { browser, status, body } = await app.login();
    expect(status).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ authenticated: true, user: { preferred_username: 'meganb@contoso.com' }, token: { refreshable: true } });
    expect(f.authRequests[0]!.get('scope')).toBe('openid profile email offline_access User.Read');
    expect(f.tokenRequests[0]!.body.get('client_secret')).toBe(CLIENT_SECRET);
    const record = await app.record(browser);
    expect(f.issued.has(record!.access_token)).toBe(true);
    const me = await browser.request(`${app.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(JSON.parse(me.body)).toEqual({ ok: true });
    expectNoSecrets(app, browser, f);
  });

  it('multi-tenant ("common"): plain OAuth 2.0 endpoints, no ID token expected', async () => {
    const f = await fake({
      authorizePath: '/common/oauth2/v2.0/authorize',
      tokenPath: '/common/oauth2/v2.0/token',
      clientAuth: 'client_secret_post',
      apiPrefix: '/v1.0',
      respond: async (ctx) => ({
        json: {
          token_type: 'Bearer',
          scope: 'User.Read',
          expires_in: 3599,
          ext_expires_in: 3599,
          access_token: ctx.mint('eyJ0eXAi.'),
          refresh_token: `0.AXEA${randomBytes(18).toString('base64url')}`,
        },
      }),
    });
    const app = await startApp(providers.microsoft({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, tenant: 'common', cloudInstance: f.origin }));
    const { browser, status, body } = await app.login();
    expect(status).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ authenticated: true, token: { scope: 'User.Read', refreshable: true } });
    expect(f.authRequests[0]!.get('scope')).toBe('offline_access User.Read');
    expect(f.authRequests[0]!.has('nonce')).toBe(false);
    expect(await app.record(browser)).toMatchObject({ token_type: 'bearer' });
    expectNoSecrets(app, browser, f);
  });
});

describe('providers.gitlab', () => {
  it('discovers gitlab.com or a self-managed base URL', () => {
    expect(providers.gitlab({ clientId: 'id', clientSecret: 's' })).toEqual({
      clientId: 'id',
      clientSecret: 's',
      issuer: 'https://gitlab.com',
      scope: ['openid', 'profile', 'email', 'read_user'],
      apiBaseUrl: 'https://gitlab.com/api/v4',
    });
    expect(providers.gitlab({ clientId: 'id', clientSecret: 's', baseUrl: 'https://git.example.com/' }).issuer).toBe('https://git.example.com');
  });

  it('logs in against a GitLab-format server (Doorkeeper token response with created_at, ID token, API under /api/v4)', async () => {
    const f = await fake({
      oidcIssuerPath: '',
      authorizePath: '/oauth/authorize',
      tokenPath: '/oauth/token',
      clientAuth: 'client_secret_basic',
      apiPrefix: '/api/v4',
      respond: async (ctx) => ({
        json: {
          access_token: ctx.mint(''),
          token_type: 'Bearer',
          expires_in: 7200,
          refresh_token: randomBytes(32).toString('hex'),
          scope: 'openid profile email read_user',
          created_at: Math.floor(Date.now() / 1000),
          id_token: await ctx.idToken({
            sub: '1234567',
            sub_legacy: 'abc',
            name: 'Ada',
            nickname: 'ada',
            email: 'ada@example.com',
            nonce: ctx.code?.nonce,
          }),
        },
      }),
    });
    const app = await startApp(providers.gitlab({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, baseUrl: f.origin }));
    const { browser, status, body } = await app.login();
    expect(status).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ authenticated: true, user: { sub: '1234567', email: 'ada@example.com' }, token: { refreshable: true } });
    const me = await browser.request(`${app.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(JSON.parse(me.body)).toEqual({ ok: true });
    expect(f.apiCalls).toEqual(['/api/v4/me']);
    const record = await app.record(browser);
    expect(Object.keys(record!).sort()).toEqual([
      'access_token',
      'expires_at',
      'id_token',
      'refresh_token',
      'scope',
      'sub',
      'token_type',
      'updated_at',
      'version',
    ]);
    expectNoSecrets(app, browser, f);
  });
});

describe('providers.nylas', () => {
  it('uses the v3 hosted-auth endpoints of the region, the API key as client_secret in the body, and offline access', () => {
    expect(providers.nylas({ clientId: 'id', clientSecret: 'nyk_v0_key', region: 'eu', provider: 'google' })).toEqual({
      clientId: 'id',
      clientSecret: 'nyk_v0_key',
      issuer: 'https://api.eu.nylas.com',
      authorizationEndpoint: 'https://api.eu.nylas.com/v3/connect/auth',
      tokenEndpoint: 'https://api.eu.nylas.com/v3/connect/token',
      tokenEndpointAuthMethod: 'client_secret_post',
      authorizationParams: { access_type: 'offline', provider: 'google' },
      apiBaseUrl: 'https://api.eu.nylas.com',
    });
    expect(providers.nylas({ clientId: 'id', clientSecret: 's' }).tokenEndpoint).toBe('https://api.us.nylas.com/v3/connect/token');
    expect(() => providers.nylas({ clientId: 'id', clientSecret: 's', region: 'ap' as 'us' })).toThrow(/region/);
  });

  it('logs in against a Nylas v3 token response (grant_id, email, provider, ID token) and keeps only the standard fields', async () => {
    const f = await fake({
      authorizePath: '/v3/connect/auth',
      tokenPath: '/v3/connect/token',
      clientAuth: 'client_secret_post',
      apiPrefix: '/v3/grants',
      respond: async (ctx) => ({
        json: {
          access_token: ctx.mint('nyl_'),
          expires_in: 3600,
          id_token: await ctx.idToken({ sub: 'e19f8e1a-eb1c-41c0-b6a6-d2e59daf7f47', email: 'nyla@example.com', provider: 'google' }),
          refresh_token: `nylr_${randomBytes(18).toString('base64url')}`,
          scope: 'https://www.googleapis.com/auth/gmail.readonly profile',
          token_type: 'Bearer',
          grant_id: 'e19f8e1a-eb1c-41c0-b6a6-d2e59daf7f47',
          email: 'nyla@example.com',
          provider: 'google',
        },
      }),
    });
    const app = await startApp(
      providers.nylas({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, apiUri: f.origin, provider: 'google' }),
      {},
      '/v3/grants/me',
    );
    const { browser, status, body } = await app.login();
    expect(status).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ authenticated: true, token: { refreshable: true } });
    const q = f.authRequests[0]!;
    expect(q.get('access_type')).toBe('offline');
    expect(q.get('provider')).toBe('google');
    expect(q.has('scope')).toBe(false);
    expect(f.tokenRequests[0]!.body.get('client_secret')).toBe(CLIENT_SECRET);
    const record = await app.record(browser);
    expect(record).not.toHaveProperty('grant_id');
    expect(record).not.toHaveProperty('email');
    expect(f.issued.has(record!.access_token)).toBe(true);
    const me = await browser.request(`${app.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    expect(JSON.parse(me.body)).toEqual({ ok: true });
    expect(f.apiCalls).toEqual(['/v3/grants/me']);
    expectNoSecrets(app, browser, f);
  });
});

afterAll(async () => {
  while (started.length) await started.pop()!.close();
});
