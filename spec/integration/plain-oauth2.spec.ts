import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { oauth, oauthErrorHandler, requireAuth, RedisTokenStore, type OAuthMiddleware } from '../../lib/index.js';
import { TestBrowser } from '../helpers/browser.js';
import { CapturedLogger, connectRedis, type Redis } from '../helpers/env.js';

/**
 * A plain OAuth 2.0 server that behaves like GitHub: no discovery, no OpenID Connect, the token response
 * is form-encoded unless the client asks for JSON, no expires_in, no refresh token, and errors come back
 * with status 200.
 */
async function startGitHubLike() {
  const codes = new Map<string, { challenge: string; redirectUri: string }>();
  const tokens = new Set<string>();
  const seen: { accept?: string; authorization?: string; body?: string }[] = [];
  const app = express();
  app.get('/login/oauth/authorize', (req, res) => {
    const q = req.query as Record<string, string>;
    if (q.code_challenge_method !== 'S256') return void res.status(400).send('pkce required');
    const code = randomBytes(10).toString('hex');
    codes.set(code, { challenge: q.code_challenge!, redirectUri: q.redirect_uri! });
    res.redirect(302, `${q.redirect_uri}?code=${code}&state=${encodeURIComponent(q.state!)}`);
  });
  app.post('/login/oauth/access_token', express.urlencoded({ extended: false }), (req, res) => {
    seen.push({ accept: req.headers.accept, authorization: req.headers.authorization });
    const asJson = (req.headers.accept ?? '').includes('application/json');
    const send = (body: Record<string, string>) =>
      asJson ? res.json(body) : res.type('application/x-www-form-urlencoded').send(new URLSearchParams(body).toString());
    const [id, secret] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
      .toString()
      .split(':')
      .map(decodeURIComponent);
    if (id !== 'gh-client' || secret !== 'gh-secret') return void send({ error: 'incorrect_client_credentials' });
    const entry = codes.get(req.body.code);
    codes.delete(req.body.code);
    const challenge = createHash('sha256').update(String(req.body.code_verifier)).digest('base64url');
    if (!entry || entry.challenge !== challenge || entry.redirectUri !== req.body.redirect_uri) return void send({ error: 'bad_verification_code' });
    const token = `gho_${randomBytes(16).toString('hex')}`;
    tokens.add(token);
    send({ access_token: token, token_type: 'bearer', scope: 'read:user,repo' });
  });
  app.get('/user', (req, res) => {
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!tokens.has(token)) return void res.status(401).json({ message: 'Bad credentials' });
    res.json({ login: 'octocat' });
  });
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, server, tokens, seen };
}

let gh: Awaited<ReturnType<typeof startGitHubLike>>;
let redis: Redis;
let auth: OAuthMiddleware;
let appServer: http.Server;
let appUrl: string;
const logger = new CapturedLogger();

beforeAll(async () => {
  gh = await startGitHubLike();
  redis = await connectRedis();
  appServer = http.createServer();
  await new Promise<void>((r) => appServer.listen(0, '127.0.0.1', r));
  appUrl = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}`;
  auth = oauth({
    authorizationEndpoint: `${gh.url}/login/oauth/authorize`,
    tokenEndpoint: `${gh.url}/login/oauth/access_token`,
    clientId: 'gh-client',
    clientSecret: 'gh-secret',
    redirectUri: `${appUrl}/oauth/callback`,
    scope: ['read:user', 'repo'],
    apiBaseUrl: gh.url,
    tokenStore: new RedisTokenStore({ client: redis, prefix: `test:gh:${process.pid}:` }),
    encryptionKey: 'rez1XWRZkL8r/F5vE7eFo++RvVrNS2woOZhiTh8Fz3U=',
    logger,
  });
  await auth.ready();
  const app = express();
  app.use(session({ secret: 'gh-session-secret', resave: false, saveUninitialized: false }));
  app.use(auth);
  app.get('/api/user', requireAuth(), async (req, res) => res.json((await req.oauthClient.get('/user')).data));
  app.use(oauthErrorHandler());
  appServer.on('request', app);
});
afterAll(async () => {
  auth?.close();
  appServer?.close();
  gh?.server.close();
  await redis?.quit();
});

describe('plain OAuth 2.0 provider (GitHub-style)', () => {
  it('logs in with explicit endpoints, gets JSON by asking for it, and calls the API', async () => {
    const browser = new TestBrowser();
    const { stoppedAt } = await browser.follow(
      `${appUrl}/oauth/login?returnTo=/api/user`,
      (u) => u.startsWith(appUrl) && u.includes('/oauth/callback'),
    );
    const cb = await browser.request(stoppedAt!);
    expect(cb.status).toBe(302);
    expect(cb.location).toBe(`${appUrl}/api/user`);
    // The client asked for JSON and authenticated with client_secret_basic.
    expect(gh.seen.at(-1)?.accept).toContain('application/json');
    expect(gh.seen.at(-1)?.authorization).toMatch(/^Basic /);
    const me = await browser.request(`${appUrl}/api/user`, { headers: { accept: 'application/json' } });
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body)).toEqual({ login: 'octocat' });
  });

  it('a token without expires_in is used until the API answers 401, then the login is over', async () => {
    const browser = new TestBrowser();
    const { stoppedAt } = await browser.follow(`${appUrl}/oauth/login`, (u) => u.startsWith(appUrl) && u.includes('/oauth/callback'));
    expect((await browser.request(stoppedAt!)).status).toBe(302);
    expect((await browser.request(`${appUrl}/api/user`, { headers: { accept: 'application/json' } })).status).toBe(200);
    gh.tokens.clear(); // the user revoked the app at the provider
    const after = await browser.request(`${appUrl}/api/user`, { headers: { accept: 'application/json' } });
    expect(after.status).toBe(401);
    expect(JSON.parse(after.body)).toEqual({ error: 'login_required' });
    const page = await browser.request(`${appUrl}/api/user`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(302);
    expect(page.location).toContain('/oauth/login');
  });
});

describe('C8: fetchUserInfo with a GitHub-style /user (no sub, no ID token)', () => {
  it('C8: the userinfo endpoint is read as a protected resource: its userClaims join req.oauth.user without a sub', async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const loginOnly = oauth({
      authorizationEndpoint: `${gh.url}/login/oauth/authorize`,
      tokenEndpoint: `${gh.url}/login/oauth/access_token`,
      userinfoEndpoint: `${gh.url}/user`,
      fetchUserInfo: true,
      userClaims: ['sub', 'login', 'name'],
      clientId: 'gh-client',
      clientSecret: 'gh-secret',
      redirectUri: `${url}/oauth/callback`,
      scope: ['read:user'],
      tokenStore: new RedisTokenStore({ client: redis, prefix: `test:gh-ui:${process.pid}:` }),
      encryptionKey: 'rez1XWRZkL8r/F5vE7eFo++RvVrNS2woOZhiTh8Fz3U=',
      logger,
    });
    try {
      await loginOnly.ready();
      const app = express();
      app.use(session({ secret: 'gh-session-secret', resave: false, saveUninitialized: false }));
      app.use(loginOnly);
      app.get('/me', requireAuth(), (req, res) => res.json(req.oauth.user));
      app.use(oauthErrorHandler());
      server.on('request', app);
      const browser = new TestBrowser();
      const { stoppedAt } = await browser.follow(`${url}/oauth/login`, (u) => u.startsWith(url) && u.includes('/oauth/callback'));
      expect((await browser.request(stoppedAt!)).status).toBe(302);
      const me = await browser.request(`${url}/me`, { headers: { accept: 'application/json' } });
      expect(me.status).toBe(200);
      expect(JSON.parse(me.body)).toEqual({ login: 'octocat' });
    } finally {
      loginOnly.close();
      server.closeAllConnections();
      server.close();
    }
  });
});
