import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';

export const CLIENT_ID = 'test-client';
export const CLIENT_SECRET = 'test-client-secret: with spaces & symbols/+=';

/** What the test provider counts, so tests can assert exactly what reached it. */
export interface ProviderCounters {
  tokenRequests: number;
  codeGrants: number;
  refreshGrants: number;
  refreshErrors: number;
  revocations: number;
  authorizationRequests: number;
  /** Pushed authorization requests received (RFC 9126). */
  parRequests: number;
}

/** A fault the token endpoint should produce instead of answering normally. */
export type TokenFault = (
  | { kind: 'status'; status: number; body: string; contentType?: string; headers?: Record<string, string> }
  | { kind: 'hang' }
  | { kind: 'drip'; intervalMs: number }
  | { kind: 'huge'; bytes: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'close' }
  /** Answers from what the request carried (the form body and the client credentials): a hostile endpoint that echoes them. */
  | { kind: 'respond'; answer: (request: ReceivedRequest) => { status: number; body: unknown } }
) & {
  /** Runs before the fault is applied (e.g. another writer acting meanwhile). */
  before?: () => Promise<void>;
};

/** What a `respond` fault sees of a request: its form body and the client credentials (Basic or form). */
export interface ReceivedRequest {
  form: URLSearchParams;
  clientId: string | undefined;
  clientSecret: string | undefined;
}

function received(raw: string, authorization: string | undefined): ReceivedRequest {
  const form = new URLSearchParams(raw);
  const m = /^Basic (.+)$/i.exec(authorization ?? '');
  if (!m) return { form, clientId: form.get('client_id') ?? undefined, clientSecret: form.get('client_secret') ?? undefined };
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  const dec = (v: string) => decodeURIComponent(v.replace(/\+/g, ' '));
  return { form, clientId: dec(decoded.slice(0, i)), clientSecret: dec(decoded.slice(i + 1)) };
}

export interface TestProvider {
  issuer: string;
  provider: Provider;
  server: http.Server;
  counters: ProviderCounters;
  /** Sets a fault for the next matching token requests (`grant` filters by grant_type), until cleared. */
  setTokenFault(fault: TokenFault | undefined, grant?: 'authorization_code' | 'refresh_token'): void;
  /** Rewrites successful token responses of a grant (e.g. drop refresh_token, change fields). */
  setTokenRewrite(rewrite: ((body: Record<string, unknown>) => Record<string, unknown>) | undefined, grant?: string): void;
  /** Sets a fault for every request to a path (e.g. `/token/revocation`), until cleared. */
  setPathFault(path: string, fault: TokenFault | undefined): void;
  /** Signs an ID token with the provider's own key (for tests of a changed `sub`). */
  signIdToken(claims: Record<string, unknown>): Promise<string>;
  /** Signs any JWT with the provider's own key (forged logout tokens in tests); `header` overrides the protected header. */
  signJwt(claims: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
  /** The provider's public signing key as PEM (for the HMAC-with-public-key test). */
  publicKeyPem: string;
  /** Whether an access token is still valid at the provider. */
  accessTokenValid(token: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface ProviderOptions {
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  accessTokenTtl?: number;
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt';
  /** The client's public keys (private_key_jwt), inline in its registration. */
  clientJwks?: { keys: Array<Record<string, unknown>> };
  /** The client's `jwks_uri` instead (the provider fetches the keys). */
  clientJwksUri?: string;
  /** PAR: `require_pushed_authorization_requests` for the whole provider (metadata). */
  requirePar?: boolean;
  /** DPoP nonces required at the token endpoint (features.dPoP.requireNonce). */
  dpopRequireNonce?: boolean;
  /** Bind access tokens to DPoP only when the client asks (default oidc-provider behaviour); `true` forces DPoP for this client. */
  dpopBoundAccessTokens?: boolean;
  /** Extra claims of each account; `use` is `id_token` or `userinfo` (claims only userinfo returns). */
  accountClaims?: (id: string, use: string) => Record<string, unknown>;
  /** Register additional koa middleware at the front (fault injection). */
  issuerHost?: string;
  /** Enables Back-Channel Logout and registers this `backchannel_logout_uri` (with `backchannel_logout_session_required`). */
  backchannelLogoutUri?: string;
}

/** Starts oidc-provider on 127.0.0.1:0 with one confidential client, rotating refresh tokens and reuse detection. */
export async function startProvider(options: ProviderOptions): Promise<TestProvider> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${options.issuerHost ?? '127.0.0.1'}:${port}`;
  const counters: ProviderCounters = {
    tokenRequests: 0,
    codeGrants: 0,
    refreshGrants: 0,
    refreshErrors: 0,
    revocations: 0,
    authorizationRequests: 0,
    parRequests: 0,
  };
  let fault: { fault: TokenFault; grant: string | undefined } | undefined;
  const pathFaults = new Map<string, TokenFault>();
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const publicKeyPem = await exportSPKI(publicKey);
  const signingJwk = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  let rewrite: { fn: (b: Record<string, unknown>) => Record<string, unknown>; grant: string | undefined } | undefined;

  const config: Configuration = {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: options.redirectUris,
        post_logout_redirect_uris: options.postLogoutRedirectUris ?? [],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: options.tokenEndpointAuthMethod ?? 'client_secret_basic',
        ...(options.backchannelLogoutUri ? { backchannel_logout_uri: options.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
        // Re-parsed here: oidc-provider wants plain objects of its own realm (`constructor === Object`).
        ...(options.clientJwks ? { jwks: JSON.parse(JSON.stringify(options.clientJwks)) as never } : {}),
        ...(options.clientJwksUri ? { jwks_uri: options.clientJwksUri } : {}),
        ...(options.dpopBoundAccessTokens ? { dpop_bound_access_tokens: true } : {}),
      },
    ],
    jwks: { keys: [signingJwk as never] },
    cookies: { keys: ['test-provider-cookie-key-0123456789'] },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      ...(options.backchannelLogoutUri ? { backchannelLogout: { enabled: true } } : {}),
      dPoP: {
        enabled: true,
        ...(options.dpopRequireNonce ? { nonceSecret: Buffer.alloc(32, 7), requireNonce: () => true } : {}),
      },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: options.requirePar ?? false },
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'picture'] },
    conformIdTokenClaims: false,
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: () => true,
    ttl: {
      AccessToken: options.accessTokenTtl ?? 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 24 * 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 24 * 3600,
    },
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async (use: string) => ({
        sub: id,
        email: `${id}@example.test`,
        email_verified: true,
        name: `User ${id}`,
        ...(options.accountClaims?.(id, use) ?? {}),
      }),
    }),
    pkce: { required: () => true },
    // Quiet the default render of errors to HTML in tests.
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  };

  const provider = new Provider(issuer, config);
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const grant = ctx.oidc.params?.grant_type;
    if (grant === 'authorization_code') counters.codeGrants++;
    if (grant === 'refresh_token') counters.refreshGrants++;
  });
  provider.on('grant.error', (ctx: KoaContextWithOIDC) => {
    if (ctx.oidc.params?.grant_type === 'refresh_token') counters.refreshErrors++;
  });
  provider.on('revocation.error', () => {});
  // Counted in the middleware below (successful revocations answer 200).

  provider.use(async (ctx, next) => {
    if (ctx.path === '/auth') counters.authorizationRequests++;
    if (ctx.path === '/request' && ctx.method === 'POST') counters.parRequests++;
    const pf = pathFaults.get(ctx.path);
    if (pf) {
      await pf.before?.();
      if (pf.kind === 'respond') return respond(ctx as unknown as KoaContextWithOIDC, pf, await readBody(ctx.req));
      if (pf.kind === 'delay') await new Promise((r) => setTimeout(r, pf.ms));
      else return applyFault(ctx as unknown as KoaContextWithOIDC, pf);
    }
    if (ctx.path === '/token/revocation') {
      await next();
      if (ctx.status === 200) counters.revocations++;
      return;
    }
    if (ctx.path !== '/token' || ctx.method !== 'POST') return next();
    counters.tokenRequests++;
    // Peek at the grant type without consuming the body for oidc-provider.
    const raw = await readBody(ctx.req);
    const grant = new URLSearchParams(raw).get('grant_type') ?? undefined;
    const f = fault && (fault.grant === undefined || fault.grant === grant) ? fault.fault : undefined;
    if (f) {
      await f.before?.();
      if (f.kind === 'delay') await new Promise((r) => setTimeout(r, f.ms));
      else if (f.kind === 'respond') return respond(ctx as unknown as KoaContextWithOIDC, f, raw);
      else return applyFault(ctx as unknown as KoaContextWithOIDC, f);
    }
    // Hand the raw body to oidc-provider's parser (it reads req.body once the stream is consumed).
    (ctx.req as unknown as { body?: string }).body = raw;
    await next();
    if (rewrite && (rewrite.grant === undefined || rewrite.grant === grant) && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      ctx.body = rewrite.fn({ ...(ctx.body as Record<string, unknown>) });
    }
  });

  server.on('request', provider.callback());

  return {
    issuer,
    provider,
    server,
    counters,
    setTokenFault(f, grant) {
      fault = f ? { fault: f, grant } : undefined;
    },
    setPathFault(path, f) {
      if (f) pathFaults.set(path, f);
      else pathFaults.delete(path);
    },
    async signIdToken(claims) {
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
        .setIssuer(issuer)
        .setAudience(CLIENT_ID)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(privateKey);
    },
    publicKeyPem,
    async signJwt(claims, header = {}) {
      return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key', ...header } as never).sign(privateKey);
    },
    setTokenRewrite(fn, grant) {
      rewrite = fn ? { fn, grant } : undefined;
    },
    async accessTokenValid(token) {
      const found = await provider.AccessToken.find(token);
      return !!found && !found.isExpired;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function respond(ctx: KoaContextWithOIDC, f: Extract<TokenFault, { kind: 'respond' }>, raw: string): void {
  const { status, body } = f.answer(received(raw, ctx.req.headers.authorization));
  ctx.respond = false;
  ctx.res.writeHead(status, { 'content-type': 'application/json' });
  ctx.res.end(JSON.stringify(body));
}

async function applyFault(ctx: KoaContextWithOIDC, f: TokenFault): Promise<void> {
  ctx.respond = false;
  const res = ctx.res;
  switch (f.kind) {
    case 'status':
      res.writeHead(f.status, { 'content-type': f.contentType ?? 'application/json', ...(f.headers ?? {}) });
      res.end(f.body);
      return;
    case 'hang':
      return; // never answers; the client must give up
    case 'drip': {
      res.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        res.write(' ');
      }, f.intervalMs);
      res.on('close', () => clearInterval(timer));
      return;
    }
    case 'huge':
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"access_token":"${'a'.repeat(f.bytes)}","token_type":"bearer"}`);
      return;
    case 'delay':
      ctx.respond = true;
      return;
    case 'close':
      res.socket?.destroy();
      return;
    case 'respond':
      throw new Error('respond faults are answered before applyFault');
  }
}
