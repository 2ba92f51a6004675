import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import express, { type Express } from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import {
  boundedSessionStore,
  oauth,
  oauthErrorHandler,
  requireAuth,
  RedisTokenStore,
  OAuthError,
  type OAuthMiddleware,
  type OAuthOptions,
  type TokenStore,
} from '../../lib/index.js';
import { RecordCipher, type TokenRecord } from '../../lib/token-record.js';
import { TestBrowser, authorizeAtProvider } from './browser.js';
import { CLIENT_ID, CLIENT_SECRET, startProvider, type ProviderOptions, type TestProvider } from './provider.js';

export const ENCRYPTION_KEY = 'ZyfcJAcgS2m4tFMtQvCYm2pR5k7KQv+PKuSp6gxEL0g=';
export const SESSION_SECRET = 'test-session-secret-0123456789';
export const redisUrl = () => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const makeClient = (url: string) => createClient({ url, socket: { reconnectStrategy: (n) => Math.min(n * 50, 500), connectTimeout: 2000 } });
export type Redis = ReturnType<typeof makeClient>;

export async function connectRedis(url = redisUrl()): Promise<Redis> {
  const client = makeClient(url);
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Captures log lines of the middleware (and anything else handed this logger). */
export class CapturedLogger {
  readonly lines: string[] = [];
  private add(level: string, message: string, meta?: Record<string, unknown>) {
    this.lines.push(`${level} ${message} ${meta ? JSON.stringify(meta) : ''}`);
  }
  debug = (m: string, meta?: Record<string, unknown>) => this.add('debug', m, meta);
  info = (m: string, meta?: Record<string, unknown>) => this.add('info', m, meta);
  warn = (m: string, meta?: Record<string, unknown>) => this.add('warn', m, meta);
  error = (m: string, meta?: Record<string, unknown>) => this.add('error', m, meta);
}

/** A resource server that accepts only access tokens the provider still knows (checked in-process). */
export interface ResourceServer {
  url: string;
  server: http.Server;
  /** Authorization headers received, per path. */
  authorizations: Array<{ path: string; authorization: string | undefined }>;
  hits: number;
  close(): Promise<void>;
}

export async function startResourceServer(provider: TestProvider): Promise<ResourceServer> {
  const app = express();
  const state: ResourceServer = { url: '', server: undefined as unknown as http.Server, authorizations: [], hits: 0, close: async () => {} };
  app.use((req, _res, next) => {
    state.authorizations.push({ path: req.path, authorization: req.headers.authorization });
    next();
  });
  const auth: express.RequestHandler = async (req, res, next) => {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const token = m ? await provider.provider.AccessToken.find(m[1]!) : undefined;
    if (!token || token.isExpired)
      return void res.status(401).set('WWW-Authenticate', 'Bearer error="invalid_token"').json({ error: 'invalid_token' });
    res.locals.sub = token.accountId;
    res.locals.scope = token.scope;
    next();
  };
  app.get('/v1/me', auth, (_req, res) => {
    state.hits++;
    res.json({ sub: res.locals.sub, scope: res.locals.scope, hits: state.hits });
  });
  app.post('/v1/echo', auth, express.json(), (req, res) => {
    state.hits++;
    res.json({ sub: res.locals.sub, received: req.body });
  });
  // Echoes the request headers the API saw (without the token) and whose token it was.
  app.get('/v1/headers', auth, (req, res) => {
    const { authorization: _authorization, ...headers } = req.headers;
    res.json({ sub: res.locals.sub, headers });
  });
  app.get('/v1/redirect', auth, (_req, res) => res.redirect(302, 'http://127.0.0.1:1/elsewhere'));
  app.get('/v1/big', auth, (_req, res) => res.type('json').send(`"${'x'.repeat(2 * 1024 * 1024)}"`));
  app.get('/v1/hang', auth, () => {});
  app.put('/v1/echo', auth, express.json(), (req, res) => res.json({ sub: res.locals.sub, received: req.body }));
  app.get('/v1/reset', auth, (req) => req.socket.destroy());
  app.get('/v1/drip', auth, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('"');
    const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write('x')), 100);
    res.on('close', () => clearInterval(timer));
  });
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.server = server;
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

export interface TestEnv {
  appUrl: string;
  provider: TestProvider;
  api: ResourceServer;
  redis: Redis;
  auth: OAuthMiddleware;
  logger: CapturedLogger;
  app: Express;
  server: http.Server;
  tokenStore: TokenStore;
  prefix: string;
  options: OAuthOptions;
  /** Logs a browser in through the real provider pages; returns the response of the callback. */
  login(
    browser?: TestBrowser,
    opts?: { user?: string; returnTo?: string },
  ): Promise<{ browser: TestBrowser; callback: Awaited<ReturnType<TestBrowser['request']>> }>;
  /** Starts a login and stops at the provider's redirect back (the callback URL, unfetched). */
  startLogin(browser: TestBrowser, opts?: { user?: string; returnTo?: string }): Promise<string>;
  /** The session id behind a browser's cookie. */
  sid(browser: TestBrowser): string;
  readRecord(sid: string): Promise<TokenRecord | null>;
  writeRecord(sid: string, record: TokenRecord): Promise<void>;
  rawRecord(sid: string): Promise<string | null>;
  close(): Promise<void>;
}

export interface EnvOptions {
  /** Provider options; a function gets the app's URL (e.g. a client `jwks_uri` served by the app). */
  provider?: Partial<ProviderOptions> | ((appUrl: string) => Partial<ProviderOptions>);
  oauth?: Partial<OAuthOptions> | ((provider: TestProvider, api: ResourceServer) => Partial<OAuthOptions>);
  /** Adds routes before the standard ones. */
  routes?: (app: Express) => void;
  /** Use this store instead of a RedisTokenStore on the shared Redis. */
  tokenStore?: TokenStore;
  /** Use this express-session store instead of connect-redis on the shared Redis. */
  sessionStore?: session.Store;
  redis?: Redis;
  /** Another app instance over the same provider, API and stores (prefix) as an existing env. */
  sharing?: TestEnv;
  /** Do not wait for `auth.ready()` (discovery failing on purpose). */
  skipReady?: boolean;
  /** Mounted right after app.use(auth), before the standard routes (another oauth() instance beside it). */
  mountAfterAuth?: (app: Express) => void;
  /** express-session cookie options instead of the standard ones (HttpOnly, SameSite=Lax, Path=/). */
  cookie?: session.CookieOptions;
  /** Mount the session store as given, without `boundedSessionStore` (only the package's own `storeTimeout` bounds waits). */
  unboundedSessionStore?: boolean;
  /** Register `<app>/oauth/backchannel-logout` at the provider (Back-Channel Logout enabled there). */
  backchannelLogout?: boolean;
}

let envCounter = 0;

/** Starts the provider, a resource server and the client app (express-session + connect-redis + oauth()). */
export async function createEnv(options: EnvOptions = {}): Promise<TestEnv> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const shared = options.sharing;
  const provider =
    shared?.provider ??
    (await startProvider({
      redirectUris: [`${appUrl}/oauth/callback`],
      postLogoutRedirectUris: [`${appUrl}/`],
      ...(options.backchannelLogout ? { backchannelLogoutUri: `${appUrl}/oauth/backchannel-logout` } : {}),
      ...(typeof options.provider === 'function' ? options.provider(appUrl) : options.provider),
    }));
  const api = shared?.api ?? (await startResourceServer(provider));
  const redis = options.redis ?? shared?.redis ?? (await connectRedis());
  const prefix = shared?.prefix ?? `test:${process.pid}:${++envCounter}:${Date.now()}:`;
  const tokenStore = options.tokenStore ?? new RedisTokenStore({ client: redis, prefix });
  const logger = new CapturedLogger();
  const oauthOptions: OAuthOptions = {
    issuer: provider.issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUri: shared?.options.redirectUri ?? `${appUrl}/oauth/callback`,
    scope: ['openid', 'email', 'profile', 'offline_access'],
    apiBaseUrl: api.url,
    tokenStore,
    encryptionKey: ENCRYPTION_KEY,
    logger,
    ...(typeof options.oauth === 'function' ? options.oauth(provider, api) : options.oauth),
  };
  const auth = oauth(oauthOptions);
  if (!options.skipReady) await auth.ready();

  const app = express();
  app.use(
    session({
      store:
        options.unboundedSessionStore && options.sessionStore
          ? options.sessionStore
          : boundedSessionStore(options.sessionStore ?? new RedisStore({ client: redis, prefix: `${prefix}sess:` }), {
              timeout: oauthOptions.storeTimeout ?? 2000,
            }),
      secret: SESSION_SECRET,
      resave: false,
      saveUninitialized: false,
      cookie: options.cookie ?? { httpOnly: true, sameSite: 'lax', secure: false, path: '/' },
    }),
  );
  app.use(auth);
  options.mountAfterAuth?.(app);
  options.routes?.(app);
  app.get('/', (req, res) => res.type('html').send(`<h1>home</h1>${req.oauth.isAuthenticated ? 'logged in' : 'anonymous'}`));
  app.get('/public', (_req, res) => res.send('public'));
  app.get('/profile', requireAuth(), async (req, res) => res.json({ user: req.oauth.user, api: (await req.oauthClient.get('/v1/me')).data }));
  app.get('/api/me', requireAuth(), async (req, res) => res.json((await req.oauthClient.get('/v1/me')).data));
  app.get('/api/call', requireAuth(), async (req, res) => {
    const r = await req.oauthClient.get(String(req.query.url));
    res.json({ status: r.status, data: r.data });
  });
  app.post('/api/stream-post', requireAuth(), async (req, res) => {
    const r = await req.oauthClient.post('/v1/echo', Readable.from([Buffer.from('{"a":1}')]), { headers: { 'content-type': 'application/json' } });
    res.json(r.data);
  });
  app.post('/api/stream-put', requireAuth(), async (req, res) => {
    const r = await req.oauthClient.put('/v1/echo', Readable.from([Buffer.from('{"a":1}')]), { headers: { 'content-type': 'application/json' } });
    res.json(r.data);
  });
  app.get('/api/inspect-error', requireAuth(), async (req, res) => {
    // What an app would log: the whole error, inspected and as JSON.
    try {
      await req.oauthClient.get(String(req.query.url));
      res.json({ ok: true });
    } catch (err) {
      const e = err as Error & { toJSON?: () => unknown };
      res.json({
        name: e.name,
        code: (e as { code?: string }).code,
        inspected: inspect(err, { depth: 12 }),
        json: JSON.stringify(e.toJSON?.() ?? null),
      });
    }
  });
  app.post('/api/json-post', requireAuth(), async (req, res) => {
    const r = await req.oauthClient.post('/v1/echo', { a: 1 });
    res.json(r.data);
  });
  app.get('/api/token-info', requireAuth(), async (req, res) => res.json((await req.oauth.tokenInfo()) ?? null));
  app.use(oauthErrorHandler());
  // Upstream errors (AxiosError) become their status; anything else 500. Bodies never carry error details.
  app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const status = (err as { response?: { status?: number } }).response?.status ?? (err instanceof OAuthError ? err.status : 500);
    logger.error('app error', { name: (err as Error)?.name, message: (err as Error)?.message, code: (err as { code?: string })?.code });
    res.status(status).json({ error: 'upstream', status });
  });
  server.on('request', app);

  const cipher = new RecordCipher(Array.isArray(oauthOptions.encryptionKey) ? oauthOptions.encryptionKey : [oauthOptions.encryptionKey], {
    issuer: provider.issuer,
    clientId: CLIENT_ID,
  });

  const isCallback = (u: string) => u.startsWith(`${appUrl}/oauth/callback`);
  const env: TestEnv = {
    appUrl,
    provider,
    api,
    redis,
    auth,
    logger,
    app,
    server,
    tokenStore,
    prefix,
    options: oauthOptions,
    async startLogin(browser, opts = {}) {
      const q = opts.returnTo === undefined ? '' : `?returnTo=${encodeURIComponent(opts.returnTo)}`;
      const start = await browser.request(`${appUrl}/oauth/login${q}`);
      if (start.status !== 302 || !start.location) throw new Error(`login did not redirect: ${start.status} ${start.body.slice(0, 200)}`);
      return authorizeAtProvider(browser, start.location, opts.user ?? 'alice', isCallback);
    },
    async login(browser = new TestBrowser(), opts = {}) {
      const callbackUrl = await env.startLogin(browser, opts);
      const callback = await browser.request(callbackUrl);
      return { browser, callback };
    },
    sid(browser) {
      const raw = browser.cookies(appUrl).get('connect.sid');
      if (!raw) throw new Error('no session cookie');
      const v = decodeURIComponent(raw);
      return v.slice(2, v.lastIndexOf('.'));
    },
    async rawRecord(sid) {
      return tokenStore.get(sid);
    },
    async readRecord(sid) {
      const raw = await tokenStore.get(sid);
      return raw ? cipher.open(sid, raw) : null;
    },
    async writeRecord(sid, record) {
      await tokenStore.set(sid, await cipher.seal(sid, record), 3600_000);
    },
    async close() {
      auth.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      if (shared) return;
      await api.close();
      await provider.close();
      if (!options.redis) await redis.quit().catch(() => {});
    },
  };
  return env;
}
