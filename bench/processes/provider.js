/**
 * The benchmark's identity provider: oidc-provider on 127.0.0.1 with one confidential client, PKCE,
 * refresh tokens that rotate (with reuse detection), and JWT access tokens for the upstream API (resource
 * indicators with a default resource), so the API can check them with the JWKS alone.
 *
 * It counts what reaches it (token requests by grant, refresh successes and errors) and times every
 * request on the server side, by kind: the orchestrator reads and resets these over IPC. The access-token
 * lifetime can be changed at run time (`setAccessTokenTtl`) to log in with a token that expires soon.
 * DPoP (RFC 9449) is enabled: a client that sends a proof gets DPoP-bound tokens (`cnf.jkt`), the others bearer ones.
 */
import http from 'node:http';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';
import { childConfig, serve } from '../lib/ipc.js';

const cfg = childConfig();
// oidc-provider's in-memory store keeps ~1000 entries (LRU, oldest grants and refresh tokens evicted):
// load tests with many sessions ask for room with `storeSize`.
const bigStore = cfg.storeSize ? new LRU({ maxSize: cfg.storeSize }) : undefined;
class BigMemoryAdapter extends MemoryAdapter {
  constructor(model) {
    super(model, bigStore);
  }
}
export const API_RESOURCE = cfg.apiResource;

const state = { accessTokenTtl: 3600 };
const fresh = () => ({
  tokenRequests: 0,
  codeGrants: 0,
  refreshGrants: 0,
  refreshErrors: 0,
  refreshMs: [],
  // Server-side ms, summed, for the login split: pages the browser sees vs back-channel calls from the app.
  frontMs: 0,
  frontRequests: 0,
  backMs: 0,
  backRequests: 0,
});
let counters = fresh();

const BACK_CHANNEL = new Set(['/token', '/jwks', '/me', '/token/introspection', '/token/revocation', '/.well-known/openid-configuration']);
// The redirect URIs of the variant apps are only known once they listen (port 0): any loopback /callback.
const LOOPBACK_CALLBACK = /^http:\/\/127\.0\.0\.1:\d{2,5}\/callback$/;

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  ...(bigStore ? { adapter: BigMemoryAdapter } : {}),
  clients: [
    {
      client_id: cfg.clientId,
      client_secret: cfg.clientSecret,
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  cookies: { keys: ['bench-provider-cookie-key-0123456789abcdef'] },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    // RFC 9449: tokens are bound only when the client sends a DPoP proof (the pkg-dpop variant); every other
    // variant gets bearer tokens exactly as before.
    dPoP: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => API_RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== API_RESOURCE) throw new Error(`unknown resource ${resource}`);
        return { scope: 'api:read', audience: API_RESOURCE, accessTokenFormat: 'jwt' };
      },
    },
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: false,
  scopes: ['openid', 'offline_access', 'email', 'profile', 'api:read'],
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: () => state.accessTokenTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 24 * 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 24 * 3600,
  },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: `${id}@example.test`, email_verified: true, name: `User ${id}` }),
  }),
  pkce: { required: () => true },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});
provider.Client.prototype.redirectUriAllowed = (uri) => LOOPBACK_CALLBACK.test(uri);

provider.on('grant.success', (ctx) => {
  const grant = ctx.oidc.params?.grant_type;
  // Read back by the timing hook below, when the response has been sent.
  ctx.req.benchGrant = grant;
  if (grant === 'authorization_code') counters.codeGrants++;
  if (grant === 'refresh_token') counters.refreshGrants++;
});
provider.on('grant.error', (ctx) => {
  if (ctx.oidc.params?.grant_type === 'refresh_token') counters.refreshErrors++;
});
provider.on('server_error', (_ctx, err) => console.error(`provider server_error: ${err?.message}`));

const callback = provider.callback();
server.on('request', (req, res) => {
  const started = process.hrtime.bigint();
  const path = (req.url ?? '/').split('?')[0];
  const isToken = path === '/token' && req.method === 'POST';
  if (isToken) counters.tokenRequests++;
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (BACK_CHANNEL.has(path)) {
      counters.backMs += ms;
      counters.backRequests++;
    } else {
      counters.frontMs += ms;
      counters.frontRequests++;
    }
    if (req.benchGrant === 'refresh_token' && res.statusCode === 200 && counters.refreshMs.length < 10_000) counters.refreshMs.push(ms);
  });
  callback(req, res);
});

const ipc = serve(
  {
    counters: () => counters,
    reset: () => {
      const before = counters;
      counters = fresh();
      return before;
    },
    /**
     * Issues `count` refresh tokens directly through the provider's models (a grant per account, the same
     * fields a login with offline_access would give), for load tests that set up many sessions without
     * driving the login pages (bench/many-users.js). Answers `[{ accountId, refreshToken }]`.
     */
    mint: async ({ count, accountPrefix = 'user', offset = 0 }) => {
      const client = await provider.Client.find(cfg.clientId);
      const scope = 'openid email profile offline_access api:read';
      const out = [];
      const now = Math.floor(Date.now() / 1000);
      for (let i = offset; i < offset + count; i++) {
        const accountId = `${accountPrefix}${i}`;
        const grant = new provider.Grant({ clientId: client.clientId, accountId });
        grant.addOIDCScope('openid email profile offline_access');
        grant.addResourceScope(API_RESOURCE, 'api:read');
        const grantId = await grant.save();
        const rt = new provider.RefreshToken({ client, accountId, grantId, scope, resource: API_RESOURCE, authTime: now, gty: 'authorization_code', iiat: now });
        out.push({ accountId, refreshToken: await rt.save() });
      }
      return out;
    },
    setAccessTokenTtl: ({ seconds }) => {
      if (!Number.isInteger(seconds) || seconds < 1) throw new Error('seconds must be a positive integer');
      state.accessTokenTtl = seconds;
      return state.accessTokenTtl;
    },
  },
  {
    onExit: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  },
);
ipc.ready({ issuer, pid: process.pid });
