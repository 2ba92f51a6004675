import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';

/**
 * A second, plain OAuth 2.0 provider in the style of GitHub: no discovery and no ID token, errors from the
 * token endpoint with status 200, a form-encoded token response unless JSON is asked for, a revocation
 * endpoint, optional expiring tokens with refresh tokens (GitHub Apps), and its own small API:
 * `GET /user` and `GET /repos` (which needs the `repo` scope, and says so with RFC 6750 `insufficient_scope`).
 */
export interface GitHubLike {
  url: string;
  server: http.Server;
  /** Live access tokens and their scope. */
  tokens: Map<string, string>;
  refreshTokens: Map<string, string>;
  /** Refresh grants served. */
  refreshes: number;
  /** Tokens revoked through the revocation endpoint. */
  revoked: string[];
  /** `expires_in` of new tokens (seconds); undefined: none (GitHub OAuth apps). */
  expiresIn: number | undefined;
  /** Delay of the token endpoint's refresh answers, in ms (to make refresh storms overlap). */
  refreshDelayMs: number;
  close(): Promise<void>;
}

export async function startGitHubLike(clientId = 'gh-client', clientSecret = 'gh-secret'): Promise<GitHubLike> {
  const codes = new Map<string, { challenge: string; redirectUri: string; scope: string }>();
  const state: GitHubLike = {
    url: '',
    server: undefined as unknown as http.Server,
    tokens: new Map(),
    refreshTokens: new Map(),
    refreshes: 0,
    revoked: [],
    expiresIn: undefined,
    refreshDelayMs: 0,
    close: async () => {},
  };
  const issue = (scope: string) => {
    const token = `gho_${randomBytes(16).toString('hex')}`;
    state.tokens.set(token, scope);
    const body: Record<string, string | number> = { access_token: token, token_type: 'bearer', scope: scope.replaceAll(' ', ',') };
    if (state.expiresIn !== undefined) {
      const refresh = `ghr_${randomBytes(16).toString('hex')}`;
      state.refreshTokens.set(refresh, scope);
      body.refresh_token = refresh;
      body.expires_in = state.expiresIn;
    }
    return body;
  };
  const authenticated = (req: express.Request) => {
    const [id, secret] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
      .toString()
      .split(':')
      .map(decodeURIComponent);
    return id === clientId && secret === clientSecret;
  };
  const app = express();
  app.get('/login/oauth/authorize', (req, res) => {
    const q = req.query as Record<string, string>;
    if (q.code_challenge_method !== 'S256') return void res.status(400).send('pkce required');
    const code = randomBytes(10).toString('hex');
    codes.set(code, { challenge: q.code_challenge!, redirectUri: q.redirect_uri!, scope: q.scope ?? '' });
    res.redirect(302, `${q.redirect_uri}?code=${code}&state=${encodeURIComponent(q.state!)}`);
  });
  app.post('/login/oauth/access_token', express.urlencoded({ extended: false }), async (req, res) => {
    const asJson = (req.headers.accept ?? '').includes('application/json');
    const send = (body: Record<string, string | number>) =>
      asJson
        ? res.json(body)
        : res.type('application/x-www-form-urlencoded').send(new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString());
    if (!authenticated(req)) return void send({ error: 'incorrect_client_credentials' });
    const body = req.body as Record<string, string>;
    if (body.grant_type === 'refresh_token') {
      state.refreshes++;
      await new Promise((r) => setTimeout(r, state.refreshDelayMs));
      const scope = state.refreshTokens.get(body.refresh_token!);
      if (scope === undefined) return void send({ error: 'bad_refresh_token' });
      state.refreshTokens.delete(body.refresh_token!); // rotation: single use
      return void send(issue(scope));
    }
    const entry = codes.get(body.code!);
    codes.delete(body.code!);
    const challenge = createHash('sha256').update(String(body.code_verifier)).digest('base64url');
    if (!entry || entry.challenge !== challenge || entry.redirectUri !== body.redirect_uri) return void send({ error: 'bad_verification_code' });
    send(issue(entry.scope));
  });
  app.post('/applications/revoke', express.urlencoded({ extended: false }), (req, res) => {
    if (!authenticated(req)) return void res.status(401).end();
    const token = String((req.body as Record<string, string>).token);
    state.revoked.push(token);
    state.tokens.delete(token);
    state.refreshTokens.delete(token);
    res.status(200).end();
  });
  const scopeOf = (req: express.Request) => state.tokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
  app.get('/user', (req, res) => {
    if (scopeOf(req) === undefined) return void res.status(401).json({ message: 'Bad credentials' });
    res.json({ login: 'octocat' });
  });
  app.get('/repos', (req, res) => {
    const scope = scopeOf(req);
    if (scope === undefined) return void res.status(401).json({ message: 'Bad credentials' });
    if (!scope.split(' ').includes('repo')) {
      return void res.status(403).set('WWW-Authenticate', 'Bearer error="insufficient_scope", scope="repo"').json({ message: 'needs repo' });
    }
    res.json([{ name: 'hello-world' }]);
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
