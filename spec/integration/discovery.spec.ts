import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import request from 'supertest';
import { afterEach, describe, expect, it } from '@jest/globals';
import { oauth, MemoryTokenStore, ConfigError, type OAuthMiddleware } from '../../lib/index.js';
import { CapturedLogger } from '../helpers/env.js';
import { startRecorder } from '../helpers/recorder.js';

/** A metadata server whose answers the test controls. */
async function metadataServer(handler: (path: string, issuer: string) => { status: number; body?: unknown }) {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { status, body } = handler(req.url ?? '', issuer);
    res.writeHead(status, { 'content-type': 'application/json' }).end(body === undefined ? '' : JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, issuer, hits: () => hits };
}

const metadata = (issuer: string) => ({
  issuer,
  authorization_endpoint: `${issuer}/auth`,
  token_endpoint: `${issuer}/token`,
  jwks_uri: `${issuer}/jwks`,
  response_types_supported: ['code'],
});

let cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup) c();
  cleanup = [];
});

/** An app with express-session (unless `cookie` is null) and oauth() against `issuer`. */
function make(
  issuer: string,
  opts: { logger?: CapturedLogger; redirectUri?: string; cookie?: session.CookieOptions | null } = {},
): { auth: OAuthMiddleware; app: express.Express; logger: CapturedLogger } {
  const logger = opts.logger ?? new CapturedLogger();
  const auth = oauth({
    issuer,
    clientId: 'c',
    clientSecret: 's3cret-value',
    redirectUri: opts.redirectUri ?? 'http://localhost:3000/oauth/callback',
    apiBaseUrl: 'http://localhost:4000',
    tokenStore: new MemoryTokenStore(),
    encryptionKey: 'Dj4oXkI3HzxwBTcyzXIEzGiQlWvlrGH4/v58F0P8OGY=',
    scope: 'openid',
    logger,
  });
  cleanup.push(() => auth.close());
  const app = express();
  if (opts.cookie !== null) app.use(session({ secret: 'x', resave: false, saveUninitialized: false, cookie: opts.cookie ?? {} }));
  app.use(auth);
  return { auth, app, logger };
}

/** A metadata server that answers correctly, closed after the test. */
async function healthyMetadata() {
  const md = await metadataServer((_path, issuer) => ({ status: 200, body: metadata(issuer) }));
  cleanup.push(() => md.server.close());
  return md;
}

describe('J: discovery', () => {
  it('J1: metadata for another issuer refuses to start (ready() rejects, naming the option and the fix)', async () => {
    const md = await metadataServer((path, issuer) => ({ status: 200, body: metadata(`${issuer}/someone-else`) }));
    cleanup.push(() => md.server.close());
    const { auth, app } = make(md.issuer);
    await expect(auth.ready()).rejects.toThrow(ConfigError);
    await expect(auth.ready()).rejects.toThrow(/`issuer`.*exact issuer identifier/);
    await expect(auth.ready()).rejects.toThrow(`\`issuer: '${md.issuer}/someone-else'\``);
    const res = await request(app).get('/oauth/login');
    expect(res.status).toBe(503);
    expect(res.headers.location).toBeUndefined();
  });

  it('J2: unreachable discovery is retried with backoff, never cached; logins get 503 meanwhile', async () => {
    let healthy = false;
    const md = await metadataServer((path, issuer) => (healthy ? { status: 200, body: metadata(issuer) } : { status: 500 }));
    cleanup.push(() => md.server.close());
    const { auth, app, logger } = make(md.issuer);
    const ready = auth.ready();
    const during = await request(app).get('/oauth/login');
    expect(during.status).toBe(503);
    expect(during.headers['retry-after']).toBeDefined();
    expect(during.headers.location).toBeUndefined();
    expect(await auth.isReady()).toBe(false);
    healthy = true;
    await ready; // resolves once a retry succeeds
    expect(logger.lines.some((l) => l.includes('discovery failed') && l.includes('retrying'))).toBe(true);
    const after = await request(app).get('/oauth/login');
    expect(after.status).toBe(302);
    expect(after.headers.location).toMatch(new RegExp(`^${md.issuer}/auth\\?`));
    expect(await auth.isReady()).toBe(true);
  });

  it.each([307, 302])(
    'J16: a discovery document that %i-redirects to a live server is not followed: the target receives nothing, logins get 503',
    async (status) => {
      // The redirect target would answer with perfectly valid metadata for the issuer: following it would "work".
      let issuer = '';
      const recorder = await startRecorder(() => ({ body: JSON.stringify(metadata(issuer)) }));
      const md = await metadataServer(() => ({ status: 200 }));
      md.server.removeAllListeners('request');
      let hits = 0;
      md.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
        hits++;
        res.writeHead(status, { location: `${recorder.url}${req.url ?? '/'}` }).end();
      });
      issuer = md.issuer;
      cleanup.push(() => md.server.close());
      try {
        const { auth, app } = make(md.issuer);
        let settled = false;
        auth.ready().then(
          () => (settled = true),
          () => (settled = true),
        );
        // Poll for the real signal: the issuer answered the discovery request (at least once).
        const deadline = Date.now() + 10_000;
        while (hits === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        expect(hits).toBeGreaterThan(0);
        const login = await request(app).get('/oauth/login');
        expect(login.status).toBe(503);
        expect(login.headers.location).toBeUndefined();
        expect(settled).toBe(false);
        expect(await auth.isReady()).toBe(false);
        expect(recorder.requests).toEqual([]);
      } finally {
        await recorder.close();
      }
    },
  );

  it('J24: a failed discovery names the metadata URL it tried (and the RFC 8414 one after a 404), never a secret', async () => {
    const md = await metadataServer(() => ({ status: 500 }));
    cleanup.push(() => md.server.close());
    const { auth, logger } = make(`${md.issuer}/tenant`);
    for (let i = 0; i < 100 && !logger.lines.some((l) => l.includes('discovery failed')); i++) await new Promise((r) => setTimeout(r, 20));
    const line = logger.lines.find((l) => l.includes('discovery failed'))!;
    expect(line).toContain(`at ${md.issuer}/tenant/.well-known/openid-configuration (`);
    expect(line).not.toContain('s3cret-value');
    auth.close();

    // Not found as OpenID configuration: the RFC 8414 URL (well-known inserted before the path) is named too.
    const nf = await metadataServer(() => ({ status: 404 }));
    cleanup.push(() => nf.server.close());
    const second = make(`${nf.issuer}/tenant`);
    for (let i = 0; i < 100 && !second.logger.lines.some((l) => l.includes('discovery failed')); i++) await new Promise((r) => setTimeout(r, 20));
    expect(second.logger.lines.find((l) => l.includes('discovery failed'))).toContain(
      `at ${nf.issuer}/tenant/.well-known/openid-configuration, then ${nf.issuer}/.well-known/oauth-authorization-server/tenant (`,
    );
  });

  it('J25: a dead issuer is named in the discovery log line', async () => {
    const dead = await metadataServer(() => ({ status: 200 }));
    const issuer = dead.issuer;
    await new Promise<void>((r) => dead.server.close(() => r()));
    const { logger } = make(issuer);
    for (let i = 0; i < 100 && !logger.lines.some((l) => l.includes('discovery failed')); i++) await new Promise((r) => setTimeout(r, 20));
    const line = logger.lines.find((l) => l.includes('discovery failed'))!;
    expect(line).toContain(`at ${issuer}/.well-known/openid-configuration (`);
    expect(line).toMatch(/could not be reached/);
    expect(line).not.toContain('s3cret-value');
  });

  it('J3: a plain OAuth 2.0 server is discovered through RFC 8414 metadata', async () => {
    const md = await metadataServer((path, issuer) =>
      path === '/.well-known/oauth-authorization-server' ? { status: 200, body: metadata(issuer) } : { status: 404 },
    );
    cleanup.push(() => md.server.close());
    const { auth, app } = make(md.issuer);
    await auth.ready();
    const res = await request(app).get('/oauth/login');
    expect(res.status).toBe(302);
  });

  it('J4: without express-session mounted first, requests fail with a message saying how to fix it', async () => {
    const { app } = make((await healthyMetadata()).issuer, { cookie: null });
    let message = '';
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      message = err.message;
      res.status(500).end();
    });
    await request(app).get('/anything');
    expect(message).toMatch(/Mount express-session .* before app\.use\(oauth/);
  });
});

describe("J: an `issuer` that differs from the provider's exact identifier (issue 9 item 9)", () => {
  /** Metadata served under `/realm` (a path issuer), naming `named(base)` as issuer. */
  async function realmMetadata(named: (base: string) => string) {
    const md = await metadataServer((path, base) =>
      path === '/realm/.well-known/openid-configuration'
        ? { status: 200, body: { ...metadata(`${base}/realm`), issuer: named(base) } }
        : { status: 404 },
    );
    cleanup.push(() => md.server.close());
    return md;
  }

  it("J6: a trailing slash on an origin issuer is normalised to the metadata's exact string, with one warning naming it", async () => {
    const md = await healthyMetadata();
    const { auth, app, logger } = make(`${md.issuer}/`);
    await auth.ready();
    const warnings = logger.lines.filter((l) => l.startsWith('warn') && l.includes('issuer'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`\`issuer: '${md.issuer}'\``);
    const res = await request(app).get('/oauth/login');
    expect(res.status).toBe(302);
    expect(res.headers.location).toMatch(new RegExp(`^${md.issuer}/auth\\?`));
  });

  for (const [label, configured, named] of [
    ['configured with a trailing slash, metadata without', (b: string) => `${b}/realm/`, (b: string) => `${b}/realm`],
    ['configured without a trailing slash, metadata with', (b: string) => `${b}/realm`, (b: string) => `${b}/realm/`],
  ] as const) {
    it(`J7: a path issuer ${label}: starts, using the metadata's exact string, with a warning`, async () => {
      const md = await realmMetadata(named);
      const { auth, app, logger } = make(configured(md.issuer));
      await auth.ready();
      expect(logger.lines.filter((l) => l.startsWith('warn') && l.includes(`\`issuer: '${named(md.issuer)}'\``))).toHaveLength(1);
      expect((await request(app).get('/oauth/login')).status).toBe(302);
    });
  }

  for (const [label, configured, named] of [
    ['another path', (b: string) => `${b}/realm`, (b: string) => `${b}/other`],
    ['another case', (b: string) => `${b.replace('http://', 'HTTP://')}/realm`, (b: string) => `${b}/realm`],
  ] as const) {
    it(`J8: metadata naming ${label}: ready() rejects with a ConfigError naming the exact issuer to use; logins get 503`, async () => {
      const md = await realmMetadata(named);
      const { auth, app, logger } = make(configured(md.issuer));
      await expect(auth.ready()).rejects.toThrow(ConfigError);
      const expected = `\`issuer: '${named(md.issuer)}'\``;
      await expect(auth.ready()).rejects.toThrow(expected);
      expect(logger.lines.some((l) => l.startsWith('error') && l.includes(expected))).toBe(true);
      const res = await request(app).get('/oauth/login');
      expect(res.status).toBe(503);
      expect(res.headers.location).toBeUndefined();
    });
  }
});

describe('middleware order', () => {
  it('req.oauthClient on a route that oauth() did not see says how to fix it', async () => {
    const { auth } = make((await healthyMetadata()).issuer);
    let message = '';
    const app = express();
    // A route registered before app.use(oauth()): the app's accessors exist, this request's state does not.
    app.get('/early', (req, res) => {
      try {
        void req.oauthClient;
      } catch (err) {
        message = (err as Error).message;
      }
      res.end();
    });
    app.use(session({ secret: 'x', resave: false, saveUninitialized: false }));
    app.use(auth);
    app.get('/late', (_req, res) => res.end());
    await request(app).get('/late');
    await request(app).get('/early');
    expect(message).toBe('req.oauthClient is not available: mount app.use(oauth({...})) before this route.');
  });
});

describe('G: cookie and proxy setup warnings (rule 10)', () => {
  it('G14: SameSite=Strict, a non-HttpOnly cookie and https behind a proxy without trust proxy are each reported once', async () => {
    const { auth, app, logger } = make((await healthyMetadata()).issuer, { cookie: { sameSite: 'strict', httpOnly: false } });
    await auth.ready();
    await request(app).get('/oauth/login').set('X-Forwarded-Proto', 'https');
    await request(app).get('/oauth/login').set('X-Forwarded-Proto', 'https');
    const text = logger.lines.join('\n');
    expect(logger.lines.filter((l) => l.includes("'trust proxy' is not set"))).toHaveLength(1);
    expect(text).toContain('SameSite=Strict');
    expect(text).toContain('not HttpOnly');
    expect(logger.lines.filter((l) => l.includes('SameSite=Strict'))).toHaveLength(1);
  });

  it("G15: an https app whose session cookie is not Secure (express-session's default) is reported", async () => {
    const { auth, app, logger } = make((await healthyMetadata()).issuer, { redirectUri: 'https://app.example.com/oauth/callback' });
    await auth.ready();
    await request(app).get('/oauth/login');
    expect(logger.lines.join('\n')).toContain('not Secure');
  });
});
