/**
 * Variant "hand-written baseline": what a team writes by hand. express-session on connect-redis, the
 * tokens kept in plaintext in the session, the code exchanged (and the token refreshed) with fetch, one
 * shared keep-alive axios instance for the API. It does what the protocol needs (state, PKCE, nonce, a
 * new session id after login) and nothing more: no single flight, no lock, no encryption.
 */
import { createHash, randomBytes } from 'node:crypto';
import express from 'express';
import { apiClient, finalErrorHandler, healthz, redisSession } from './common.js';

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);
const promisify = (fn) => new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));

export async function build({ origin, issuer, apiUrl, redis, prefix, clientId, clientSecret, sessionSecret, scope }) {
  const metaRes = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
  if (!metaRes.ok) throw new Error(`discovery answered ${metaRes.status}`);
  const meta = await metaRes.json();
  const redirectUri = `${origin}/callback`;
  const form = (s) => encodeURIComponent(s).replace(/%20/g, '+');
  const basic = `Basic ${Buffer.from(`${form(clientId)}:${form(clientSecret)}`).toString('base64')}`;
  const api = apiClient(apiUrl);

  async function tokenRequest(params) {
    const res = await fetch(meta.token_endpoint, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(params).toString(),
      signal: AbortSignal.timeout(10_000),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || typeof body.access_token !== 'string') {
      throw Object.assign(new Error(`token endpoint answered ${res.status} ${body.error ?? ''}`), { status: 502 });
    }
    return body;
  }

  const app = express();
  app.get('/healthz', healthz);
  app.use(redisSession({ redis, prefix, sessionSecret }));

  app.get('/login', async (req, res) => {
    const tx = { state: b64u(randomBytes(32)), verifier: b64u(randomBytes(32)), nonce: b64u(randomBytes(32)) };
    req.session.tx = tx;
    await promisify((cb) => req.session.save(cb));
    const url = new URL(meta.authorization_endpoint);
    url.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: scope.join(' '),
      state: tx.state,
      nonce: tx.nonce,
      code_challenge: b64u(createHash('sha256').update(tx.verifier).digest()),
      code_challenge_method: 'S256',
    }).toString();
    res.redirect(302, url.href);
  });

  app.get('/callback', async (req, res) => {
    const tx = req.session.tx;
    const { state, code } = req.query;
    if (!tx || typeof state !== 'string' || state !== tx.state || typeof code !== 'string') return void res.status(400).send('bad callback');
    delete req.session.tx;
    const tokens = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: tx.verifier });
    // The ID token came straight from the token endpoint: its claims are read, not verified (OIDC 3.1.3.7).
    const claims = JSON.parse(Buffer.from(String(tokens.id_token).split('.')[1] ?? '', 'base64url').toString('utf8'));
    if (claims.nonce !== tx.nonce) return void res.status(400).send('bad nonce');
    await promisify((cb) => req.session.regenerate(cb));
    req.session.user = { sub: claims.sub, email: claims.email, name: claims.name };
    req.session.tokens = { access_token: tokens.access_token, refresh_token: tokens.refresh_token, expires_at: nowSeconds() + Number(tokens.expires_in ?? 3600) };
    await promisify((cb) => req.session.save(cb));
    res.redirect(302, '/');
  });

  const requireLogin = (req, res, next) => (req.session.user ? next() : res.status(401).json({ error: 'login_required' }));

  app.get('/p1', requireLogin, (req, res) => {
    res.json({ sub: req.session.user.sub });
  });

  app.get('/p2', requireLogin, async (req, res) => {
    let tokens = req.session.tokens;
    if (tokens.expires_at <= nowSeconds()) {
      const fresh = await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
      tokens = req.session.tokens = {
        access_token: fresh.access_token,
        refresh_token: fresh.refresh_token ?? tokens.refresh_token,
        expires_at: nowSeconds() + Number(fresh.expires_in ?? 3600),
      };
    }
    const { data } = await api.client.get('/v1/me', { headers: { authorization: `Bearer ${tokens.access_token}` } });
    res.json(data);
  });

  app.use(finalErrorHandler);
  return { app, close: api.close };
}
