// The example's stand-ins for a real identity provider and a real API, so it runs with no account anywhere:
// an OpenID Provider (oidc-provider, with its development login and consent pages) and a small resource
// API that accepts only access tokens the provider says are active (RFC 7662 introspection).
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import express from 'express';
import Provider from 'oidc-provider';

/** Binds an http.Server to 127.0.0.1 and returns its port (0 picks a free one). */
export async function listen(server, port) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address().port;
}

export function closeServer(server) {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

const USERS = {
  alice: { name: 'Alice Liddell', email: 'alice@example.test' },
};

/**
 * Starts oidc-provider on 127.0.0.1 with one confidential client (the example app) and one resource
 * server client (the API, which may only introspect). Refresh tokens are always issued and rotated on
 * every use; reusing a rotated one revokes the grant. With `client.backchannelLogoutUri`, the client is
 * registered for back-channel logout (with `sid` in its ID tokens).
 *
 * `onTokens` receives every token response body the token endpoint sends (for the end-to-end test's check that
 * none of them reaches the browser).
 */
export async function startLocalProvider({ port, accessTokenTtl, client, apiClient, onTokens }) {
  const server = http.createServer();
  const actualPort = await listen(server, port);
  const issuer = `http://127.0.0.1:${actualPort}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: client.id,
        client_secret: client.secret,
        client_name: 'express-oauth-client example',
        redirect_uris: [client.redirectUri],
        post_logout_redirect_uris: [client.postLogoutRedirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        // OpenID Connect Back-Channel Logout: a sign-out here ends the app's sessions of that provider session.
        ...(client.backchannelLogoutUri ? { backchannel_logout_uri: client.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
      },
      {
        client_id: apiClient.id,
        client_secret: apiClient.secret,
        redirect_uris: [],
        grant_types: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    // Cookie signing keys of the provider's own session; a fresh one per start is fine for a demo.
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: true },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, caller, token) => token.clientId === caller.clientId,
      },
      introspection: {
        enabled: true,
        // Only the API may ask, and only about access tokens.
        allowedPolicy: async (_ctx, caller, token) => caller.clientId === apiClient.id && token.kind === 'AccessToken',
      },
      rpInitiatedLogout: { enabled: true, logoutSource },
      backchannelLogout: { enabled: true },
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // Put the profile and email claims in the ID token: that is where the package reads the user from.
    conformIdTokenClaims: false,
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    issueRefreshToken: async (_ctx, c) => c.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: () => true,
    pkce: { required: () => true },
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 24 * 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 24 * 3600,
    },
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({
        sub: id,
        name: USERS[id]?.name ?? `User ${id}`,
        email: USERS[id]?.email ?? `${id}@example.test`,
        email_verified: true,
      }),
    }),
  });

  // The token endpoint's response body, exactly as the client received it.
  provider.on('grant.success', (ctx) => {
    const body = ctx.body;
    if (!body || typeof body !== 'object') return;
    onTokens?.(body);
  });

  server.on('request', provider.callback());
  return { issuer, provider, server, close: () => closeServer(server) };
}

/** The provider's "sign out?" page, in the example's colours. */
async function logoutSource(ctx, form) {
  ctx.body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign out of the local identity provider</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1f2330;display:grid;place-items:center;min-height:100vh;margin:0}
.card{background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:2rem;max-width:22rem;text-align:center}
button{font:inherit;border:0;border-radius:8px;padding:.6rem 1rem;margin:.25rem;cursor:pointer;background:#e6e8ee}
button[value=yes]{background:#3451b2;color:#fff}
</style></head>
<body><div class="card"><h1>Sign out here too?</h1><p>You are logged out of the example app. Also end your session at the local identity provider?</p>
${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>
</div></body></html>`;
}

/**
 * The resource API: `GET /me` answers for the user the bearer token belongs to. Each request is checked
 * with the provider's introspection endpoint, so an expired, revoked or refresh token gets 401.
 */
export async function startResourceApi({ port, issuer, apiClient, exampleClientId }) {
  const metadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const introspectionEndpoint = metadata.introspection_endpoint;
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(apiClient.id)}:${encodeURIComponent(apiClient.secret)}`).toString('base64')}`;
  const calls = new Map();

  const app = express();
  app.disable('x-powered-by');
  app.get('/me', async (req, res) => {
    const m = /^Bearer ([\x21-\x7e]+)$/.exec(req.headers.authorization ?? '');
    let info = { active: false };
    if (m) {
      const r = await fetch(introspectionEndpoint, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token: m[1], token_type_hint: 'access_token' }),
        signal: AbortSignal.timeout(5000),
      }).catch(() => undefined);
      if (!r) return void res.status(503).json({ error: 'introspection_unavailable' });
      info = await r.json();
    }
    if (info.active !== true || info.token_type !== 'Bearer' || info.client_id !== exampleClientId) {
      res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      return void res.status(401).json({ error: 'invalid_token' });
    }
    const n = (calls.get(info.sub) ?? 0) + 1;
    calls.set(info.sub, n);
    res.set('Cache-Control', 'no-store').json({
      sub: info.sub,
      message: `Hello ${info.sub}, this came from the resource API.`,
      scope: info.scope,
      calls: n,
      servedAt: new Date().toISOString(),
    });
  });

  const server = http.createServer(app);
  const actualPort = await listen(server, port);
  return { url: `http://127.0.0.1:${actualPort}`, server, close: () => closeServer(server) };
}
