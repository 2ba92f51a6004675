import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  MemoryTokenStore,
  oauth,
  oauthProxy,
  requireAuth,
  requireConnection,
  sessionEndpoint,
  type OAuthMiddleware,
  type OAuthOptions,
} from '../../lib/index.js';
import { TestBrowser } from '../helpers/browser.js';
import { CapturedLogger, ENCRYPTION_KEY, createEnv, type TestEnv } from '../helpers/env.js';
import { startGitHubLike, type GitHubLike } from '../helpers/github-like.js';

type SessionWithApp = express.Request['session'] & { cart?: string };

/** The options of a `github` connect instance against the GitHub-style fake, on the env's token store. */
function githubConnectOptions(gh: GitHubLike, env: TestEnv): OAuthOptions {
  return {
    name: 'github',
    role: 'connect',
    authorizationEndpoint: `${gh.url}/login/oauth/authorize`,
    tokenEndpoint: `${gh.url}/login/oauth/access_token`,
    revocationEndpoint: `${gh.url}/applications/revoke`,
    clientId: 'gh-client',
    clientSecret: 'gh-secret',
    redirectUri: `${env.appUrl}/oauth/github/callback`,
    scope: ['read:user'],
    apiBaseUrl: gh.url,
    tokenStore: env.tokenStore,
    encryptionKey: ENCRYPTION_KEY,
  };
}

/** The app of createEnv (login with the OpenID Provider, unnamed instance) plus a `github` connect instance. */
async function createTwoProviderEnv(gh: GitHubLike, connect: Partial<OAuthOptions> = {}, login: Partial<OAuthOptions> = {}) {
  const slot: { github?: OAuthMiddleware } = {};
  const ghLogger = new CapturedLogger();
  const env = await createEnv({
    oauth: login,
    routes: (app) => {
      // Created once the app's URL is known (below); the group forms on the first request.
      app.use((req, res, next) => slot.github!(req, res, next));
      app.get('/cart', (req, res) => {
        (req.session as SessionWithApp).cart = 'book';
        res.json({ cart: 'book' });
      });
      app.get('/api/cart', (req, res) => res.json({ cart: (req.session as SessionWithApp).cart ?? null }));
      app.get('/api/gh/user', requireConnection('github'), async (req, res) => res.json((await req.oauthClients.github!.get('/user')).data));
      app.get('/api/gh/repos', requireConnection('github'), async (req, res) => res.json((await req.oauthClients.github!.get('/repos')).data));
      app.get('/api/both', requireAuth(), requireConnection('github'), async (req, res) => {
        const [me, gh] = await Promise.all([req.oauthClient.get('/v1/me'), req.oauthClients.github!.get('/user')]);
        res.json({ me: me.data, gh: gh.data });
      });
      app.get('/api/connections', (req, res) => res.json({ github: req.oauth.isConnected('github'), names: Object.keys(req.oauthClients) }));
      app.get('/api/nope', requireConnection('nope'), (_req, res) => res.end());
      app.get('/api/nope-client', (req, res) => res.json({ has: typeof req.oauthClients.nope }));
      app.get('/oauth/session', sessionEndpoint());
      // The browser's way to GitHub's API: the connection's token; and a proxy of the login instance aimed there.
      app.use('/bff/gh', oauthProxy({ target: gh.url, provider: 'github' }));
      app.use('/bff/gh-as-login', oauthProxy({ target: gh.url }));
    },
  });
  const github = (slot.github = oauth({ ...githubConnectOptions(gh, env), allowedScopes: ['repo'], logger: ghLogger, ...connect }));
  await github.ready();
  const connectGitHub = async (browser: TestBrowser, query = '') => {
    const { stoppedAt } = await browser.follow(`${env.appUrl}/oauth/github/login${query}`, (u) =>
      u.startsWith(`${env.appUrl}/oauth/github/callback`),
    );
    if (!stoppedAt) throw new Error('connect did not reach the callback');
    return browser.request(stoppedAt);
  };
  return { env, github, ghLogger, connectGitHub, close: async () => (github.close(), env.close()) };
}

const json = { accept: 'application/json' };
const sameOrigin = (env: TestEnv) => ({ origin: env.appUrl, accept: 'application/json' });
const ghKey = (env: TestEnv, sid: string) => `${env.prefix}tok:github:{${sid}}`;
const loginKey = (env: TestEnv, sid: string) => `${env.prefix}tok:{${sid}}`;
/** The hash tag Redis Cluster places a key by: the text between the first `{` and the next `}`. */
const hashTag = (key: string) => key.slice(key.indexOf('{') + 1, key.indexOf('}', key.indexOf('{')));

let gh: GitHubLike;
let t: Awaited<ReturnType<typeof createTwoProviderEnv>>;

beforeAll(async () => {
  gh = await startGitHubLike();
  t = await createTwoProviderEnv(gh);
});
afterAll(async () => {
  await t?.close();
  await gh?.close();
});

describe('M: several providers in one app (SECURITY.md rule 15)', () => {
  it('M1: log in with the OpenID Provider, connect GitHub, call both APIs; the app session, records and hash tags', async () => {
    const { env, connectGitHub } = t;
    const browser = new TestBrowser();
    await browser.request(`${env.appUrl}/cart`);
    await env.login(browser);
    expect(JSON.parse((await browser.request(`${env.appUrl}/api/cart`)).body)).toEqual({ cart: 'book' });
    expect(JSON.parse((await browser.request(`${env.appUrl}/api/connections`)).body)).toEqual({ github: false, names: ['default', 'github'] });
    const loginSid = env.sid(browser);

    const cb = await connectGitHub(browser);
    expect(cb.status).toBe(302);
    const sid = env.sid(browser);
    expect(sid).not.toBe(loginSid); // regenerated at the connect callback too
    // The app's field and the login survive the connection.
    expect(JSON.parse((await browser.request(`${env.appUrl}/api/cart`)).body)).toEqual({ cart: 'book' });
    const both = await browser.request(`${env.appUrl}/api/both`, { headers: json });
    expect(both.status).toBe(200);
    expect(JSON.parse(both.body)).toMatchObject({ me: { sub: 'alice' }, gh: { login: 'octocat' } });

    // One record per provider under the new id, none under the old; both in the session's hash slot.
    expect(await env.redis.exists(loginKey(env, sid))).toBe(1);
    expect(await env.redis.exists(ghKey(env, sid))).toBe(1);
    expect(await env.redis.exists(loginKey(env, loginSid))).toBe(0);
    expect(await env.redis.exists(ghKey(env, loginSid))).toBe(0);
    expect(hashTag(ghKey(env, sid))).toBe(hashTag(loginKey(env, sid)));
    expect(hashTag(`${env.prefix}lock:github:{${sid}}`)).toBe(sid);
    // The session holds each instance's data under its own key, never a token.
    const stored = (await env.redis.get(`${env.prefix}sess:${sid}`))!;
    const data = JSON.parse(stored) as Record<string, unknown>;
    expect(Object.keys(data).sort()).toEqual(['cart', 'cookie', 'oauth', 'oauth:github']);
    for (const token of gh.tokens.keys()) expect(stored).not.toContain(token);

    const info = await browser.request(`${env.appUrl}/oauth/session`, { headers: { 'x-csrf': '1' } });
    expect(JSON.parse(info.body).connections).toEqual([{ provider: 'github', connected: true }]);
  });

  it("M2: a callback of the login instance carrying the connect instance's state is refused; nothing is lost", async () => {
    const { env } = t;
    const browser = new TestBrowser();
    await env.login(browser);
    const { stoppedAt } = await browser.follow(`${env.appUrl}/oauth/github/login`, (u) => u.startsWith(`${env.appUrl}/oauth/github/callback`));
    const ghCallback = new URL(stoppedAt!);
    const revokedBefore = gh.revoked.length;
    // The same code and state, delivered to the login instance's callback.
    const crossed = await browser.request(`${env.appUrl}/oauth/callback${ghCallback.search}`, { headers: json });
    expect(crossed.status).toBe(400);
    expect(JSON.parse(crossed.body)).toEqual({ error: 'callback_invalid' });
    // And the other way: the OpenID Provider's callback to GitHub's route.
    const oidcCallback = new URL(await env.startLogin(browser));
    const crossed2 = await browser.request(`${env.appUrl}/oauth/github/callback${oidcCallback.search}`, { headers: json });
    expect(crossed2.status).toBe(400);
    // The login still works, and GitHub's pending connection still completes.
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    expect((await browser.request(ghCallback.href)).status).toBe(302);
    expect((await browser.request(`${env.appUrl}/api/gh/user`, { headers: json })).status).toBe(200);
    expect(gh.revoked.length).toBe(revokedBefore);
    expect(t.ghLogger.lines.join('\n')).toContain('unknown_or_expired_state');
  });

  it("M3: disconnect revokes and deletes GitHub's record only; a cross-site disconnect is refused", async () => {
    const { env, connectGitHub } = t;
    const browser = new TestBrowser();
    await env.login(browser);
    await connectGitHub(browser);
    const sid = env.sid(browser);
    const ghRaw = await env.redis.get(ghKey(env, sid));

    const cross = await browser.request(`${env.appUrl}/oauth/github/disconnect`, {
      method: 'POST',
      headers: { origin: 'http://evil.example', ...json },
    });
    expect(cross.status).toBe(403);
    expect(await env.redis.get(ghKey(env, sid))).toBe(ghRaw);
    expect((await browser.request(`${env.appUrl}/oauth/github/disconnect`, { headers: json })).status).toBe(405);

    const revokedBefore = gh.revoked.length;
    const res = await browser.request(`${env.appUrl}/oauth/github/disconnect`, { method: 'POST', headers: sameOrigin(env) });
    expect(res.status).toBe(204);
    expect(gh.revoked.length).toBe(revokedBefore + 1);
    expect(await env.redis.exists(ghKey(env, sid))).toBe(0);
    expect(await env.redis.exists(loginKey(env, sid))).toBe(1);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    const gone = await browser.request(`${env.appUrl}/api/gh/user`, { headers: json });
    expect(gone.status).toBe(401);
    expect(JSON.parse(gone.body)).toEqual({ error: 'connection_required', provider: 'github' });
    // A page is sent to GitHub's login with returnTo.
    const page = await browser.request(`${env.appUrl}/api/gh/user`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(302);
    expect(page.location).toBe(`${env.appUrl}/oauth/github/login?returnTo=%2Fapi%2Fgh%2Fuser`);
  });

  it('M4: logout of the login instance ends every connection (each revoked) and the session', async () => {
    const { env, connectGitHub } = t;
    const browser = new TestBrowser();
    await env.login(browser);
    await connectGitHub(browser);
    const sid = env.sid(browser);
    const revokedBefore = gh.revoked.length;
    const res = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: sameOrigin(env) });
    expect(res.status).toBe(204);
    expect(gh.revoked.length).toBe(revokedBefore + 1);
    expect(await env.redis.exists(ghKey(env, sid))).toBe(0);
    expect(await env.redis.exists(loginKey(env, sid))).toBe(0);
    expect(await env.redis.exists(`${env.prefix}sess:${sid}`)).toBe(0);
  });

  it('M30: a second app process whose first request is the logout still ends every connection (instances found in the router, not on first use)', async () => {
    const { env, connectGitHub } = t;
    const browser = new TestBrowser();
    await env.login(browser);
    await connectGitHub(browser);
    const sid = env.sid(browser);
    // Another process of the same app: the login instance (createEnv) and GitHub mounted directly beside it.
    const githubB = oauth({ ...githubConnectOptions(gh, env), logger: new CapturedLogger() });
    await githubB.ready();
    const b = await createEnv({ sharing: env, mountAfterAuth: (app) => app.use(githubB) });
    try {
      const revokedBefore = gh.revoked.length;
      const res = await browser.request(`${env.appUrl}/oauth/logout`.replace(env.appUrl, b.appUrl), {
        method: 'POST',
        headers: { origin: env.appUrl, accept: 'application/json', cookie: browser.cookieHeader(env.appUrl) },
      });
      expect(res.status).toBe(204);
      expect(gh.revoked.length).toBe(revokedBefore + 1);
      expect(await env.redis.exists(ghKey(env, sid))).toBe(0);
      expect(await env.redis.exists(loginKey(env, sid))).toBe(0);
    } finally {
      githubB.close();
      await b.close();
    }
  });

  it("M5: a record copied from the login key to GitHub's key does not open there (the name is in the AAD); the login is untouched", async () => {
    const { env, connectGitHub } = t;
    const browser = new TestBrowser();
    await env.login(browser);
    await connectGitHub(browser);
    const sid = env.sid(browser);
    await env.redis.set(ghKey(env, sid), (await env.redis.get(loginKey(env, sid)))!);
    const res = await browser.request(`${env.appUrl}/api/gh/user`, { headers: json });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toEqual({ error: 'connection_required', provider: 'github' });
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    expect(await env.redis.exists(loginKey(env, sid))).toBe(1);
  });

  it('M6: insufficient_scope from the API names the scope; ?scope= asks for it (allowlist only) and the record keeps it', async () => {
    const { env, connectGitHub } = t;
    const browser = new TestBrowser();
    await env.login(browser);
    await connectGitHub(browser);
    const denied = await browser.request(`${env.appUrl}/api/gh/repos`, { headers: json });
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toEqual({ error: 'insufficient_scope', provider: 'github', scope: 'repo' });

    expect((await browser.request(`${env.appUrl}/oauth/github/login?scope=admin:org`, { headers: json })).status).toBe(400);
    const start = await browser.request(`${env.appUrl}/oauth/github/login?scope=repo`);
    expect(new URL(start.location!).searchParams.get('scope')).toBe('read:user repo');
    expect((await connectGitHub(browser, '?scope=repo')).status).toBe(302);
    const repos = await browser.request(`${env.appUrl}/api/gh/repos`, { headers: json });
    expect(repos.status).toBe(200);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
  });

  it('M7: unknown provider names are configuration errors, not silent undefined', async () => {
    const { env } = t;
    const browser = new TestBrowser();
    await env.login(browser);
    expect((await browser.request(`${env.appUrl}/api/nope`, { headers: json })).status).toBe(500);
    expect((await browser.request(`${env.appUrl}/api/nope-client`, { headers: json })).status).toBe(500);
    expect(env.logger.lines.join('\n')).toContain("no oauth() instance named 'nope'");
  });
});

describe('M: the API proxy of a connection (rule 16)', () => {
  it("M14: oauthProxy({ provider: 'github' }) sends the connection's token, never the login's; without the connection 401 JSON", async () => {
    const { env, connectGitHub } = t;
    const browser = new TestBrowser();
    await env.login(browser);
    const csrf = { 'x-csrf': '1', accept: 'application/json' };
    const before = gh.authorizations.length;
    const none = await browser.request(`${env.appUrl}/bff/gh/user`, { headers: csrf });
    expect(none.status).toBe(401);
    expect(none.location).toBeUndefined();
    expect(gh.authorizations.length).toBe(before); // nothing went upstream

    await connectGitHub(browser);
    const res = await browser.request(`${env.appUrl}/bff/gh/user`, { headers: csrf });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ login: 'octocat' });
    const sent = gh.authorizations.slice(before);
    expect(sent).toHaveLength(1);
    const token = sent[0]!.replace(/^Bearer /, '');
    expect(gh.tokens.has(token)).toBe(true); // GitHub's own token...
    const login = (await env.readRecord(env.sid(browser)))!;
    expect(token).not.toBe(login.access_token); // ...not the login's
    expect(`${JSON.stringify(res.headers)}${res.body}`).not.toContain(token);

    // A proxy of the login instance aimed at GitHub's origin (not in its apiBaseUrl) sends nothing there.
    const crossed = await browser.request(`${env.appUrl}/bff/gh-as-login/user`, { headers: csrf });
    expect(crossed.status).toBe(500); // a configuration mistake: 500, and nothing sent
    expect(JSON.parse(crossed.body)).toEqual({ error: 'origin_not_allowed' });
    expect(gh.authorizations.slice(before)).toHaveLength(1);
    expect(crossed.body).not.toContain(login.access_token);

    // Without the anti-CSRF header: refused before anything goes upstream.
    expect((await browser.request(`${env.appUrl}/bff/gh/user`, { headers: json })).status).toBe(403);
    // After a disconnect the proxy answers 401 again, and the login's API still works.
    expect((await browser.request(`${env.appUrl}/oauth/github/disconnect`, { method: 'POST', headers: sameOrigin(env) })).status).toBe(204);
    expect((await browser.request(`${env.appUrl}/bff/gh/user`, { headers: csrf })).status).toBe(401);
    expect(gh.authorizations.slice(before)).toHaveLength(1);
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
  });
});

describe('M: refresh of each provider, independently', () => {
  it('M8: a storm of concurrent calls to both APIs with both tokens expired refreshes each provider exactly once', async () => {
    const { env, connectGitHub } = t;
    const browser = new TestBrowser();
    await env.login(browser);
    gh.expiresIn = 1; // an expiring GitHub App token with a refresh token
    const connectedAt = Math.floor(Date.now() / 1000);
    try {
      expect((await connectGitHub(browser)).status).toBe(302);
    } finally {
      gh.expiresIn = undefined;
    }
    const sid = env.sid(browser);
    const record = (await env.readRecord(sid))!;
    await env.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5 });
    // Wait until GitHub's token has expired (its 1 s life, counted in whole seconds from the callback).
    while (Math.floor(Date.now() / 1000) < connectedAt + 2) await new Promise((r) => setTimeout(r, 50));
    const refreshed: string[] = [];
    const onRefresh = ({ provider }: { provider: string }) => refreshed.push(provider);
    env.auth.events.on('refresh', onRefresh);
    t.github.events.on('refresh', onRefresh);
    const ghBefore = gh.refreshes;
    gh.refreshDelayMs = 150;
    try {
      const results = await Promise.all(Array.from({ length: 12 }, () => browser.request(`${env.appUrl}/api/both`, { headers: json })));
      expect(results.map((r) => `${r.status} ${r.status === 200 ? '' : r.body}`)).toEqual(Array(12).fill('200 '));
    } finally {
      gh.refreshDelayMs = 0;
      env.auth.events.off('refresh', onRefresh);
      t.github.events.off('refresh', onRefresh);
    }
    expect(gh.refreshes - ghBefore).toBe(1);
    expect(refreshed.sort()).toEqual(['default', 'github']);
  });
});

describe('M: the app session and connections across logins', () => {
  it("M9: keepSessionData: false drops the app's own fields at the callback, and keeps other providers' pending logins", async () => {
    const local = await createTwoProviderEnv(gh, {}, { keepSessionData: false });
    try {
      const browser = new TestBrowser();
      await browser.request(`${local.env.appUrl}/cart`);
      const ghStart = await browser.request(`${local.env.appUrl}/oauth/github/login`);
      expect(ghStart.status).toBe(302);
      await local.env.login(browser);
      expect(JSON.parse((await browser.request(`${local.env.appUrl}/api/cart`)).body)).toEqual({ cart: null });
      // GitHub's pending connection, started before the login, still completes.
      const ghBack = await browser.follow(ghStart.location!, (u) => u.startsWith(`${local.env.appUrl}/oauth/github/callback`));
      expect((await browser.request(ghBack.stoppedAt!)).status).toBe(302);
      expect((await browser.request(`${local.env.appUrl}/api/gh/user`, { headers: json })).status).toBe(200);
    } finally {
      await local.close();
    }
  });

  it('M10: requireLogin: connecting before the login is refused (page to the login, JSON 401) and a callback without a login is a 401 that consumes nothing', async () => {
    const local = await createTwoProviderEnv(gh, { requireLogin: true });
    try {
      const { env, connectGitHub } = local;
      const browser = new TestBrowser();
      const page = await browser.request(`${env.appUrl}/oauth/github/login`);
      expect(page.status).toBe(302);
      expect(page.location).toBe(`${env.appUrl}/oauth/login?returnTo=%2Foauth%2Fgithub%2Flogin`);
      const api = await browser.request(`${env.appUrl}/oauth/github/login`, { headers: json });
      expect(api.status).toBe(401);
      expect(JSON.parse(api.body)).toEqual({ error: 'login_required' });

      // Logged in, a connection starts; the login ends (another tab) before the provider comes back.
      await env.login(browser);
      const { stoppedAt } = await browser.follow(`${env.appUrl}/oauth/github/login`, (u) => u.startsWith(`${env.appUrl}/oauth/github/callback`));
      await env.redis.del(loginKey(env, env.sid(browser)));
      const sid = env.sid(browser);
      await browser.request(`${env.appUrl}/api/me`, { headers: json }); // the app notices: the login is over
      const cb = await browser.request(stoppedAt!, { headers: json });
      expect(cb.status).toBe(401);
      expect(await env.redis.exists(ghKey(env, sid))).toBe(0);
      // Logged in again, the same pending connection completes: it was not consumed.
      await env.login(browser);
      expect((await browser.request(stoppedAt!)).status).toBe(302);
      expect((await connectGitHub(browser)).status).toBe(302);
    } finally {
      await local.close();
    }
  });

  it('M11: another user logging in over a session with connections does not inherit them (revoked)', async () => {
    const { env, connectGitHub } = t;
    const browser = new TestBrowser();
    await env.login(browser, { user: 'alice' });
    await connectGitHub(browser);
    const aliceSid = env.sid(browser);
    const revokedBefore = gh.revoked.length;
    browser.cookies(env.provider.issuer).clear(); // alice leaves the provider; bob logs in there
    await env.login(browser, { user: 'bob' });
    expect(JSON.parse((await browser.request(`${env.appUrl}/api/me`, { headers: json })).body).sub).toBe('bob');
    const bobSid = env.sid(browser);
    expect(await env.redis.exists(ghKey(env, bobSid))).toBe(0);
    expect(await env.redis.exists(ghKey(env, aliceSid))).toBe(0);
    expect(gh.revoked.length).toBe(revokedBefore + 1);
    expect(JSON.parse((await browser.request(`${env.appUrl}/api/connections`)).body).github).toBe(false);
  });
});

describe('M: configuration of several instances (family J)', () => {
  const base = {
    issuer: 'http://localhost:9/a',
    authorizationEndpoint: 'http://localhost:9/a/authorize',
    tokenEndpoint: 'http://localhost:9/a/token',
    clientId: 'client',
    clientSecret: 'secret',
    redirectUri: 'http://localhost:3000/oauth/callback',
    scope: 'read',
    apiBaseUrl: 'http://localhost:4000',
    tokenStore: new MemoryTokenStore(),
    encryptionKey: ENCRYPTION_KEY,
    logger: new CapturedLogger(),
  } satisfies OAuthOptions;

  it('M12: name and role are checked at startup', () => {
    expect(() => oauth({ ...base, name: 'github' })).toThrow(/`role` is required with `name: 'github'`/);
    expect(() => oauth({ ...base, role: 'connect' })).toThrow(/needs a `name`/);
    expect(() => oauth({ ...base, name: 'Git Hub', role: 'connect' })).toThrow(/`name` must be/);
    expect(() => oauth({ ...base, requireLogin: true })).toThrow(/`requireLogin` is an option of `role: 'connect'`/);
    expect(() => oauth({ ...base, name: 'gh', role: 'connect', paths: { logout: '/x' } })).toThrow(/not a route of a `role: 'connect'`/);
    expect(() => oauth({ ...base, name: 'gh', role: 'connect', allowedScopes: ['a b'] })).toThrow(/allowedScopes/);
  });

  it('M13: two instances with one name, two login instances, or a shared path: every request of the app gets a clear 500', async () => {
    const session = (await import('express-session')).default;
    const request = (await import('supertest')).default;
    const cases: Array<[OAuthOptions, OAuthOptions, RegExp]> = [
      [
        { ...base, name: 'gh', role: 'connect', redirectUri: 'http://localhost:3000/gh/cb' },
        { ...base, name: 'gh', role: 'connect', redirectUri: 'http://localhost:3000/gh/cb2' },
        /two instances are named 'gh'/,
      ],
      [base, { ...base, name: 'corp', role: 'login', redirectUri: 'http://localhost:3000/corp/cb' }, /both have `role: 'login'`/],
      [base, { ...base, name: 'gh', role: 'connect' }, /both mount \/oauth\/callback/],
    ];
    for (const [a, b, message] of cases) {
      const logger = new CapturedLogger();
      const first = oauth({ ...a, logger });
      const second = oauth({ ...b, logger });
      const app = express();
      app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
      app.use(first);
      app.use(second);
      app.get('/', (_req, res) => res.send('ok'));
      try {
        await request(app).get('/').expect(500);
        await request(app).get('/').expect(500);
        expect(logger.lines.join('\n')).toMatch(message);
      } finally {
        first.close();
        second.close();
      }
    }
  });
});
