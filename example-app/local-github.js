// The example's stand-in for GitHub, so the "Connect" flow runs with no account anywhere: a plain OAuth 2.0
// provider (no discovery, no ID token) that answers like github.com does, and a small API that answers like
// api.github.com. It is what `providers.github()` talks to, with the local URLs instead of GitHub's.
//
// Like GitHub: `GET /login/oauth/authorize` shows an "Authorize" page; `POST /login/oauth/access_token` takes
// the client's credentials in the body (or Basic), answers form-encoded unless JSON is asked for, and reports
// errors with status 200 (`{"error":"bad_verification_code",...}`); tokens expire and come with a refresh
// token, rotated on every use (a GitHub App with expiring user tokens). Unlike GitHub: an RFC 7009
// revocation endpoint (`POST /applications/revoke`), so the example's Disconnect revokes here too.
import http from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import express from 'express';
import { closeServer, listen } from './local-provider.js';

const ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c]);
const token = (kind) => `gh${kind}_${randomBytes(24).toString('base64url')}`;

function sameSecret(a, b) {
  const x = Buffer.from(String(a ?? ''));
  const y = Buffer.from(String(b ?? ''));
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The client's credentials, from the form body (GitHub's way) or HTTP Basic. */
function clientCredentials(req) {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
  if (m) {
    const text = Buffer.from(m[1], 'base64').toString('utf8');
    const i = text.indexOf(':');
    if (i < 0) return {};
    try {
      return { id: decodeURIComponent(text.slice(0, i)), secret: decodeURIComponent(text.slice(i + 1)) };
    } catch {
      return {};
    }
  }
  return { id: req.body?.client_id, secret: req.body?.client_secret };
}

const page = (title, body) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;background:#f6f8fa;color:#1f2328;display:grid;place-items:center;min-height:100vh;margin:0}
.card{background:#fff;border:1px solid #d0d7de;border-radius:12px;padding:2rem;max-width:24rem;text-align:center}
input{font:inherit;padding:.4rem .6rem;border:1px solid #d0d7de;border-radius:6px;width:12rem}
button{font:inherit;border:0;border-radius:6px;padding:.6rem 1rem;margin:.25rem;cursor:pointer;background:#eaeef2}
button[value=allow]{background:#1f883d;color:#fff}
.muted{color:#59636e;font-size:.9rem}
</style></head><body><div class="card">${body}</div></body></html>`;

/**
 * Starts the GitHub-style provider (`port`) and its API (`apiPort`) on 127.0.0.1, with one registered OAuth
 * app (`client`: id, secret, redirectUri). `onTokens` receives every token response body it sends.
 */
export async function startLocalGitHub({ port, apiPort, accessTokenTtl, client, onTokens }) {
  /** Pending "Authorize?" pages, by a random id the page's form posts back. */
  const pending = new Map();
  const codes = new Map();
  const accessTokens = new Map(); // token -> { login, scope, expiresAt }
  const refreshTokens = new Map(); // token -> { login, scope }
  const calls = new Map();

  const issue = ({ login, scope }) => {
    const access = token('u');
    const refresh = token('r');
    accessTokens.set(access, { login, scope, expiresAt: Date.now() + accessTokenTtl * 1000 });
    refreshTokens.set(refresh, { login, scope });
    const body = {
      access_token: access,
      expires_in: accessTokenTtl,
      refresh_token: refresh,
      refresh_token_expires_in: 15897600,
      token_type: 'bearer',
      scope: scope.split(' ').filter(Boolean).join(','),
    };
    onTokens?.(body);
    return body;
  };

  const web = express();
  web.disable('x-powered-by');
  web.use((_req, res, next) => {
    res.set({ 'Cache-Control': 'no-store', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action *" });
    next();
  });

  web.get('/login/oauth/authorize', (req, res) => {
    const q = req.query;
    const one = (v) => (typeof v === 'string' ? v : undefined);
    if (one(q.client_id) !== client.id) return void res.status(404).type('html').send(page('Not found', '<h1>Unknown application</h1>'));
    // GitHub sends a mismatching redirect_uri back to the registered one with an error; refusing is safer.
    if (one(q.redirect_uri) !== undefined && one(q.redirect_uri) !== client.redirectUri) {
      return void res.status(400).type('html').send(page('Bad request', '<h1>The redirect_uri is not registered for this application.</h1>'));
    }
    if (q.code_challenge !== undefined && one(q.code_challenge_method) !== 'S256') {
      return void res.status(400).type('html').send(page('Bad request', '<h1>Only S256 code challenges are supported.</h1>'));
    }
    const id = randomBytes(16).toString('base64url');
    pending.set(id, {
      state: one(q.state),
      scope: (one(q.scope) ?? '').replace(/[,+]/g, ' ').trim(),
      challenge: one(q.code_challenge),
      redirectUri: client.redirectUri,
      createdAt: Date.now(),
    });
    setTimeout(() => pending.delete(id), 10 * 60_000).unref();
    const scope = pending.get(id).scope;
    res.type('html').send(
      page(
        'Authorize application',
        `<h1>Authorize express-oauth-client example</h1>
<p>The example app wants to read your profile on this local GitHub${scope ? ` (scope <code>${esc(scope)}</code>)` : ''}.</p>
<form method="post" action="/login/oauth/authorize">
<input type="hidden" name="request" value="${esc(id)}">
<p><label>Signed in as <input name="login" value="octocat" autocomplete="off"></label></p>
<button type="submit" name="decision" value="allow" autofocus>Authorize</button>
<button type="submit" name="decision" value="deny">Cancel</button>
</form>
<p class="muted">A local stand-in for github.com: any login name works.</p>`,
      ),
    );
  });

  web.post('/login/oauth/authorize', express.urlencoded({ extended: false, limit: '8kb' }), (req, res) => {
    const request = pending.get(String(req.body?.request ?? ''));
    if (!request) return void res.status(400).type('html').send(page('Expired', '<h1>This authorization request has expired.</h1>'));
    pending.delete(String(req.body.request));
    const back = new URL(request.redirectUri);
    if (request.state !== undefined) back.searchParams.set('state', request.state);
    if (req.body.decision !== 'allow') {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The user has denied your application access.');
      return void res.redirect(302, back.href);
    }
    const login = /^[A-Za-z0-9-]{1,39}$/.test(String(req.body.login ?? '')) ? String(req.body.login) : 'octocat';
    const code = randomBytes(10).toString('hex');
    codes.set(code, { login, scope: request.scope, challenge: request.challenge, redirectUri: request.redirectUri });
    setTimeout(() => codes.delete(code), 10 * 60_000).unref();
    back.searchParams.set('code', code);
    res.redirect(302, back.href);
  });

  web.post('/login/oauth/access_token', express.urlencoded({ extended: false, limit: '16kb' }), (req, res) => {
    const asJson = (req.headers.accept ?? '').includes('application/json');
    // GitHub answers 200 even for errors, with `error`, `error_description` and `error_uri`.
    const send = (body) =>
      asJson
        ? res.json(body)
        : res.type('application/x-www-form-urlencoded').send(new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString());
    const fail = (error, description) =>
      send({
        error,
        error_description: description,
        error_uri: 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors',
      });
    const creds = clientCredentials(req);
    if (creds.id !== client.id || !sameSecret(creds.secret, client.secret)) {
      return void fail('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
    }
    const body = req.body ?? {};
    if (body.grant_type === 'refresh_token') {
      const grant = refreshTokens.get(String(body.refresh_token));
      if (!grant) return void fail('bad_refresh_token', 'The refresh token passed is incorrect or expired.');
      refreshTokens.delete(String(body.refresh_token)); // rotation: a refresh token is good for one use
      return void send(issue(grant));
    }
    const entry = codes.get(String(body.code));
    codes.delete(String(body.code));
    const verifierOk =
      !entry?.challenge ||
      createHash('sha256')
        .update(String(body.code_verifier ?? ''))
        .digest('base64url') === entry.challenge;
    if (!entry || !verifierOk || (body.redirect_uri !== undefined && body.redirect_uri !== entry.redirectUri)) {
      return void fail('bad_verification_code', 'The code passed is incorrect or expired.');
    }
    send(issue(entry));
  });

  // RFC 7009 (GitHub's own revocation API is `DELETE /applications/{client_id}/grant`, which the preset does not call).
  web.post('/applications/revoke', express.urlencoded({ extended: false, limit: '8kb' }), (req, res) => {
    const creds = clientCredentials(req);
    if (creds.id !== client.id || !sameSecret(creds.secret, client.secret)) return void res.status(401).json({ error: 'invalid_client' });
    const value = String(req.body?.token ?? '');
    const grant = accessTokens.get(value) ?? refreshTokens.get(value);
    accessTokens.delete(value);
    refreshTokens.delete(value);
    // Revoking either token ends the grant's other tokens of that user, as GitHub's grant revocation does.
    if (grant) {
      for (const [t, g] of accessTokens) if (g.login === grant.login) accessTokens.delete(t);
      for (const [t, g] of refreshTokens) if (g.login === grant.login) refreshTokens.delete(t);
    }
    res.status(200).end();
  });

  const api = express();
  api.disable('x-powered-by');
  api.get('/user', (req, res) => {
    const m = /^(?:Bearer|token) ([\x21-\x7e]+)$/i.exec(req.headers.authorization ?? '');
    const grant = m ? accessTokens.get(m[1]) : undefined;
    if (!grant || grant.expiresAt <= Date.now()) {
      return void res.status(401).json({ message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest', status: '401' });
    }
    const n = (calls.get(grant.login) ?? 0) + 1;
    calls.set(grant.login, n);
    res.set('Cache-Control', 'no-store').json({
      login: grant.login,
      name: grant.login === 'octocat' ? 'The Octocat' : grant.login,
      html_url: `https://github.com/${grant.login}`,
      scope: grant.scope,
      calls: n,
      servedAt: new Date().toISOString(),
    });
  });

  const webServer = http.createServer(web);
  const apiServer = http.createServer(api);
  try {
    const webPort = await listen(webServer, port);
    const actualApiPort = await listen(apiServer, apiPort);
    return {
      url: `http://127.0.0.1:${webPort}`,
      apiUrl: `http://127.0.0.1:${actualApiPort}`,
      close: async () => {
        await Promise.all([closeServer(webServer), closeServer(apiServer)]);
      },
    };
  } catch (err) {
    if (webServer.listening) await closeServer(webServer);
    throw err;
  }
}
