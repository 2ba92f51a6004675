import { telemetryOf } from './telemetry.js';
import * as client from 'openid-client';
import { importSigningKey } from './client-auth.js';
import type { ResolvedConfig } from './config.js';
import { createDPoPKey, dpopKey, type DPoPKeyMaterial } from './dpop.js';
import { randomToken, sha256 } from './crypto.js';
import { ConfigError, OAuthError, ProviderError, providerNotLoaded, safeOAuthErrorCode, sanitizeCause } from './errors.js';
import { causes, stripUndefined, withTimeout } from './util.js';
import { FetchNetworkError, FetchTimeoutError, FetchTooLargeError, createBoundedFetch } from './http.js';
import { InvalidTokenResponseError, normalizeTokenResponse, toTokenSet, type TokenSet } from './token-response.js';

/** A login just started: the URL to send the browser to, and what the callback will need (kept server-side). */
export interface LoginStart {
  url: URL;
  state: string;
  /** PKCE code verifier. */
  verifier: string;
  nonce: string | undefined;
  /** The issuer the login goes to (RFC 9207 mix-up defence). */
  issuer: string;
}

/** What the callback needs from a pending login transaction. */
export interface CodeExchangeChecks {
  state: string;
  codeVerifier: string;
  nonce: string | undefined;
}

const ID_TOKEN_CODES = new Set([
  'OAUTH_JWT_CLAIM_COMPARISON_FAILED',
  'OAUTH_JWT_TIMESTAMP_CHECK_FAILED',
  'OAUTH_KEY_SELECTION_FAILED',
  'OAUTH_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
]);

/**
 * Turns whatever openid-client or the bounded fetch threw into a {@link ProviderError} whose message and
 * cause carry nothing from the response body (oauth4webapi attaches the whole body, tokens included,
 * as `cause`: it is dropped here).
 */
function toProviderError(err: unknown, what: string): ProviderError {
  if (err instanceof ProviderError) return err;
  const chain = causes(err);
  for (const e of chain) {
    if (e instanceof FetchTimeoutError)
      return new ProviderError('token_endpoint_timeout', `${what}: the provider did not answer in time.`, { transient: true });
    if (e instanceof FetchTooLargeError) return new ProviderError('token_endpoint_error', `${what}: the provider's response was too large.`);
    if (e instanceof InvalidTokenResponseError) return new ProviderError('token_endpoint_error', `${what}: ${e.message}.`);
    if (e instanceof FetchNetworkError) {
      return new ProviderError('token_endpoint_error', `${what}: the provider could not be reached${e.code ? ` (${e.code})` : ''}.`, {
        transient: true,
      });
    }
  }
  if (err instanceof client.ResponseBodyError) {
    const oauthError = safeOAuthErrorCode(err.error);
    return new ProviderError('token_endpoint_error', `${what}: the provider answered ${err.status} ${oauthError}.`, {
      oauthError,
      transient: err.status >= 500,
    });
  }
  // Only library error codes (OAUTH_..., ERR_...): a `cause` in the chain may be the provider's JSON body,
  // whose own `code` member is the provider's text.
  const codes = chain
    .filter((e) => e instanceof Error)
    .map((e) => (e as { code?: unknown }).code)
    .filter((c): c is string => typeof c === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(c));
  if (codes.some((c) => ID_TOKEN_CODES.has(c))) return new ProviderError('id_token_invalid', `${what}: the ID token failed validation.`);
  for (const e of chain) {
    if (e instanceof Response) {
      return new ProviderError('token_endpoint_error', `${what}: the provider answered with unexpected status ${e.status}.`, {
        transient: e.status >= 500,
      });
    }
  }
  const code = codes[0] ?? (err instanceof Error ? err.name : 'unknown');
  return new ProviderError('token_endpoint_error', `${what}: invalid provider response (${code}).`);
}

/**
 * A failed discovery, for the log line: `provider_unavailable` (503, retried), whatever the cause; only
 * the reason is taken from {@link toProviderError}, never the token endpoint's codes.
 */
function discoveryError(err: unknown): ProviderError {
  const reason = toProviderError(err, 'Discovery');
  return new ProviderError('provider_unavailable', reason.message, { transient: true, cause: sanitizeCause(reason) });
}

/** Where discovery fetches metadata: OpenID Connect Discovery 1.0 §4 (appended) or RFC 8414 §3 (inserted). */
function metadataUrl(issuer: URL, algorithm: 'oidc' | 'oauth2'): string {
  const url = new URL(issuer.href);
  const path = url.pathname === '/' ? '' : url.pathname;
  url.pathname =
    algorithm === 'oidc' ? `${path.replace(/\/$/, '')}/.well-known/openid-configuration` : `/.well-known/oauth-authorization-server${path}`;
  url.search = '';
  url.hash = '';
  return url.href;
}

/**
 * The protocol, behind one door: discovery and its retries, the authorization URL with state, PKCE and
 * nonce, code exchange, refresh, revocation and the end-session URL, all through openid-client. It owns
 * the provider configuration: callers never see it (nor any openid-client type); a call that needs it
 * before discovery has succeeded gets the 503 `provider_unavailable`. Knows nothing of Express.
 */
export class AuthorizationServer {
  private configuration: client.Configuration | undefined;
  private loading: Promise<client.Configuration> | undefined;
  private discoveredIssuer: string | undefined;
  private fatal: Error | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  /** The metadata URLs the last discovery attempt fetched, for its log line (the issuer holds no credentials). */
  private triedUrls: string[] = [];
  private readonly fetch: client.CustomFetch;

  constructor(private readonly cfg: ResolvedConfig) {
    this.fetch = createBoundedFetch(cfg.httpTimeout, cfg.maxResponseBytes, {
      onFormResponse: (status, headers, body, form) =>
        normalizeTokenResponse(status, headers, body, { grant: form.has('grant_type'), keepIdToken: cfg.openid }),
    });
    this.readyPromise.catch(() => {}); // observed by ready(); never an unhandled rejection
  }

  /**
   * The provider's exact issuer identifier, compared with `iss` at the callback (login transactions hold
   * it): the discovered metadata's `issuer` once discovery has run (it may differ from the configured
   * string by a trailing slash, see {@link resolveIssuer}), else the configured one.
   */
  get issuer(): string {
    return this.discoveredIssuer ?? this.recordIssuer;
  }

  /**
   * The issuer string token records are bound to (the record cipher's AAD): the `issuer` option exactly
   * as configured, so records written before the issuer was normalised keep opening. Known at
   * construction, before discovery.
   */
  get recordIssuer(): string {
    return this.cfg.issuer ?? new URL(this.cfg.endpoints!.authorization_endpoint).origin;
  }

  /**
   * Compares the configured `issuer` with the one the provider's metadata names. Equal: nothing to do.
   * Equal but for a trailing slash: the provider's own string is used everywhere it is compared, with a
   * warning (logged by the caller) naming the value to configure. Anything else: a {@link ConfigError} naming the exact issuer.
   */
  private resolveIssuer(discovered: unknown): string {
    const configured = this.cfg.issuer!;
    if (discovered === configured) return configured;
    const exact = typeof discovered === 'string' && /^https?:\/\/[\x21-\x7e]{1,2000}$/.test(discovered) ? discovered : undefined;
    if (exact === undefined) {
      throw new ConfigError(
        `oauth(): discovery of \`issuer\` ${configured} returned metadata without a usable issuer: check \`issuer\` is the provider's exact issuer identifier.`,
      );
    }
    const trim = (u: string) => (u.endsWith('/') ? u.slice(0, -1) : u);
    if (trim(exact) === trim(configured)) return exact;
    throw new ConfigError(
      `oauth(): discovery of \`issuer\` ${configured} returned metadata for issuer ${exact}: set \`issuer\` to the provider's exact issuer identifier, \`issuer: '${exact}'\`, if that is the provider you mean.`,
    );
  }

  private clientAuthLoaded: Promise<client.ClientAuth> | undefined;

  /** Client authentication (RFC 6749 §2.3, RFC 7523): the `private_key_jwt` key is imported once, non-extractable. */
  private clientAuth(): Promise<client.ClientAuth> {
    return (this.clientAuthLoaded ??= (async () => {
      const { method, keys } = this.cfg.clientAuth;
      const secret = this.cfg.clientSecret!;
      if (method === 'private_key_jwt') return client.PrivateKeyJwt(await importSigningKey(keys[0]!));
      if (method === 'client_secret_jwt') return client.ClientSecretJwt(secret);
      if (method === 'client_secret_post') return client.ClientSecretPost(secret);
      return client.ClientSecretBasic(secret);
    })());
  }

  /**
   * PAR (RFC 9126) against the metadata: `pushedAuthorizationRequests: true` needs the provider's PAR endpoint;
   * `false` with a provider that requires PAR is a configuration error, not a failed login per user.
   */
  private checkPar(config: client.Configuration): void {
    const meta = config.serverMetadata();
    if (this.cfg.pushedAuthorizationRequests === true && !meta.pushed_authorization_request_endpoint) {
      throw new ConfigError(
        '`pushedAuthorizationRequests` is true but the provider has no pushed_authorization_request_endpoint: leave the option out, or enable PAR at the provider.',
      );
    }
    if (this.cfg.pushedAuthorizationRequests === false && meta.require_pushed_authorization_requests === true) {
      throw new ConfigError('`pushedAuthorizationRequests` is false but the provider requires pushed authorization requests: leave the option out.');
    }
  }

  /** Whether logins go through PAR: as configured, else when the metadata requires it. */
  private usePar(config: client.Configuration): boolean {
    return this.cfg.pushedAuthorizationRequests ?? config.serverMetadata().require_pushed_authorization_requests === true;
  }

  private clientMetadata(): Partial<client.ClientMetadata> {
    return { [client.clockTolerance]: this.cfg.clockTolerance };
  }

  private prepare(config: client.Configuration): client.Configuration {
    config[client.customFetch] = this.fetch;
    config.timeout = Math.ceil(this.cfg.httpTimeout / 1000) + 1;
    const urls = [this.issuer, ...Object.values((this.cfg.endpoints ?? {}) as Record<string, string | undefined>)];
    const insecure = urls.some((u) => typeof u === 'string' && u.startsWith('http:'));
    if (insecure) client.allowInsecureRequests(config);
    // openid-client trusts the TLS channel for ID tokens from the token endpoint by default; OpenID Connect Core §3.1.3.7 wants
    // the signature checked against the provider's JWKS as well.
    if (this.cfg.openid) client.enableNonRepudiationChecks(config);
    return config;
  }

  private async discover(): Promise<client.Configuration> {
    if (this.cfg.endpoints) {
      const metadata: client.ServerMetadata = { issuer: this.issuer, ...stripUndefined(this.cfg.endpoints) };
      return this.prepare(new client.Configuration(metadata, this.cfg.clientId, this.clientMetadata(), await this.clientAuth()));
    }
    let config: client.Configuration;
    try {
      config = await this.discoverAt(this.cfg.issuer!);
    } catch (err) {
      // openid-client compares issuers as parsed URLs: `https://idp/realm/` against `https://idp/realm`
      // fails there. When the metadata names the configured issuer but for a trailing slash, discover
      // again with the provider's exact string (resolveIssuer below decides; anything else is fatal).
      const comparison = causes(err).find((e) => (e as { code?: unknown }).code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED');
      const named = ((comparison as { cause?: { body?: { issuer?: unknown } } } | undefined)?.cause?.body ?? {}).issuer;
      if (!comparison) throw err;
      const exact = this.resolveIssuer(named);
      config = await this.discoverAt(exact);
    }
    const exact = this.resolveIssuer(config.serverMetadata().issuer);
    if (exact !== this.cfg.issuer) {
      this.cfg.logger.warn(
        `\`issuer\` is configured as ${this.cfg.issuer} but the provider's exact issuer identifier is ${exact} (its metadata and \`iss\` use that form): using ${exact}. Set \`issuer: '${exact}'\` (logins stored under the current setting will then ask their users to log in once more).`,
      );
    }
    this.discoveredIssuer = exact;
    this.checkPar(config);
    if (this.cfg.fetchUserInfo && !config.serverMetadata().userinfo_endpoint) {
      throw new ConfigError(
        `oauth(): \`fetchUserInfo\` is true but the metadata of \`issuer\` ${exact} has no userinfo_endpoint: leave \`fetchUserInfo\` out.`,
      );
    }
    return this.prepare(config);
  }

  private async discoverAt(issuer: string): Promise<client.Configuration> {
    const issuerUrl = new URL(issuer);
    const execute = issuerUrl.protocol === 'http:' ? [client.allowInsecureRequests] : [];
    const options = { execute, [client.customFetch]: this.fetch, timeout: Math.ceil(this.cfg.httpTimeout / 1000) + 1 };
    this.triedUrls = [metadataUrl(issuerUrl, 'oidc')];
    const auth = await this.clientAuth();
    try {
      return await client.discovery(issuerUrl, this.cfg.clientId, this.clientMetadata(), auth, { ...options, algorithm: 'oidc' });
    } catch (err) {
      // RFC 8414 metadata for plain OAuth 2.0 servers, when there is no OpenID configuration.
      const status = causes(err).find((e): e is Response => e instanceof Response)?.status;
      if (status !== 404) throw err;
      this.triedUrls.push(metadataUrl(issuerUrl, 'oauth2'));
      return await client.discovery(issuerUrl, this.cfg.clientId, this.clientMetadata(), auth, { ...options, algorithm: 'oauth2' });
    }
  }

  private readyResolve!: () => void;
  private readyReject!: (err: Error) => void;
  private readonly readyPromise = new Promise<void>((resolve, reject) => {
    this.readyResolve = resolve;
    this.readyReject = reject;
  });

  /** Reports a failed discovery: a final configuration error, or a fault retried in `retryInMs`. */
  private logDiscovery(err: Error, retryInMs: number | undefined): void {
    if (retryInMs === undefined) this.cfg.logger.error(err.message);
    else {
      const at = this.triedUrls.length > 0 ? ` at ${this.triedUrls.join(', then ')}` : '';
      this.cfg.logger.warn(`provider discovery failed${at} (${err.message}); retrying in ${retryInMs} ms`, { urls: [...this.triedUrls] });
    }
  }

  private fail(err: ConfigError): never {
    this.fatal = err;
    this.logDiscovery(err, undefined);
    this.readyReject(err);
    throw err;
  }

  /**
   * Loads the provider's metadata (one attempt, or joins the one under way). Failures are logged and
   * retried with backoff (1 s doubling to 60 s), never cached; a metadata document whose `issuer` does not
   * match is a configuration error and is final. While a retry is scheduled, callers get
   * `provider_unavailable` at once instead of a new attempt.
   */
  load(): Promise<void> {
    if (this.configuration) return Promise.resolve();
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.loading) return this.loading.then(() => {});
    if (this.retryTimer) return Promise.reject(providerNotLoaded());
    this.loading = this.discover().then(
      (config) => {
        this.configuration = config;
        this.loading = undefined;
        this.readyResolve();
        return config;
      },
      (err: unknown) => {
        this.loading = undefined;
        if (err instanceof ConfigError) this.fail(err);
        const codes = causes(err).map((e) => (e as { code?: unknown }).code);
        if (codes.includes('OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') || codes.includes('OAUTH_INVALID_SERVER_METADATA')) {
          this.fail(
            new ConfigError(
              `oauth(): discovery of \`issuer\` ${this.cfg.issuer} returned metadata for another issuer (or invalid metadata): set \`issuer\` to the provider's exact issuer identifier.`,
            ),
          );
        }
        const delay = Math.min(60_000, 1000 * 2 ** this.attempt++);
        this.logDiscovery(discoveryError(err), delay);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.load().catch(() => {});
        }, delay);
        this.retryTimer.unref();
        throw providerNotLoaded();
      },
    );
    return this.loading.then(() => {});
  }

  /** Resolves when discovery first succeeds (it keeps retrying); rejects on a configuration error. */
  whenLoaded(): Promise<void> {
    this.load().catch(() => {});
    return this.readyPromise;
  }

  /** Whether the provider's metadata is loaded (the protocol calls below need it). */
  get isLoaded(): boolean {
    return this.configuration !== undefined;
  }

  /** The loaded configuration, or the 503 `provider_unavailable` while discovery has not succeeded. */
  private require(): client.Configuration {
    if (!this.configuration) throw providerNotLoaded();
    return this.configuration;
  }

  /**
   * For a request that needs the provider now (a login): waits for discovery at most `httpTimeout`,
   * then 503. A configuration error stays in the logs; the browser gets a 503 that does not invite quick
   * retries.
   */
  async ensureLoaded(): Promise<void> {
    if (this.configuration) return;
    await withTimeout(this.load(), this.cfg.httpTimeout, providerNotLoaded).catch((err) => {
      if (err instanceof OAuthError && err.code !== 'config_invalid') throw err;
      throw new ProviderError('provider_unavailable', 'The identity provider is not configured correctly.', { retryAfter: 30 });
    });
  }

  /** Whether the provider advertises RFC 9207 `iss` in authorization responses. */
  issParameterSupported(): boolean {
    return this.require().serverMetadata().authorization_response_iss_parameter_supported === true;
  }

  /**
   * Starts a login (RFC 6749 §4.1.1 with RFC 7636 PKCE S256, and an OpenID Connect nonce when `openid` is in
   * scope): fresh `state`, verifier and nonce, and the authorization URL. The caller keeps everything but
   * the URL server-side until the callback.
   */
  async beginLogin(extraScopes: readonly string[] = []): Promise<LoginStart> {
    const config = this.require();
    const state = randomToken(32);
    const verifier = client.randomPKCECodeVerifier();
    const nonce = this.cfg.openid ? randomToken(32) : undefined;
    const params: Record<string, string> = {
      ...this.cfg.authorizationParams,
      response_type: 'code',
      redirect_uri: this.cfg.redirectUri,
      state,
      // RFC 7636 S256, BASE64URL(SHA-256(verifier)), hashed here synchronously: openid-client's helper goes
      // through WebCrypto's thread pool, a hop that costs more than the hash on every login (issue 14 P4).
      code_challenge: sha256(verifier),
      code_challenge_method: 'S256',
    };
    const scope = [...new Set([...this.cfg.scope.split(' ').filter(Boolean), ...extraScopes])].join(' ');
    if (scope) params.scope = scope;
    if (nonce) params.nonce = nonce;
    if (!this.usePar(config)) return { url: client.buildAuthorizationUrl(config, params), state, verifier, nonce, issuer: this.issuer };
    // RFC 9126: the parameters go to the provider server to server; the browser carries client_id and request_uri only.
    let url: URL;
    try {
      url = await telemetryOf(this.cfg).span('par', () => client.buildAuthorizationUrlWithPAR(config, params));
    } catch (err) {
      const perr = toProviderError(err, 'Pushed authorization request');
      // A provider that is down or overloaded is a 503 (try again), like discovery; a wrong answer is a 502.
      if (perr.transient && perr.code === 'token_endpoint_error') {
        throw new ProviderError('provider_unavailable', perr.message, { transient: true, retryAfter: 5, cause: sanitizeCause(perr) });
      }
      throw perr;
    }
    return { url, state, verifier, nonce, issuer: this.issuer };
  }

  /**
   * Exchanges the code (RFC 6749 §4.1.3). `params` holds only the already-validated `code`, `state` and
   * `iss`; the redirect_uri sent is the configured one, never derived from the request.
   */
  async exchangeCode(params: { code: string; state: string; iss?: string }, checks: CodeExchangeChecks): Promise<TokenSet> {
    const config = this.require();
    // DPoP: a fresh key pair per login; openid-client answers a `use_dpop_nonce` challenge once.
    const dpop = this.cfg.dpop ? await createDPoPKey() : undefined;
    const currentUrl = new URL(this.cfg.redirectUri);
    currentUrl.searchParams.set('code', params.code);
    currentUrl.searchParams.set('state', params.state);
    if (params.iss !== undefined) currentUrl.searchParams.set('iss', params.iss);
    let res;
    try {
      res = await telemetryOf(this.cfg).span('code_exchange', () =>
        client.authorizationCodeGrant(
          config,
          currentUrl,
          {
            pkceCodeVerifier: checks.codeVerifier,
            expectedState: checks.state,
            expectedNonce: checks.nonce,
            idTokenExpected: this.cfg.openid,
          },
          undefined,
          dpop ? { DPoP: client.getDPoPHandle(config, dpop.key) } : undefined,
        ),
      );
    } catch (err) {
      throw toProviderError(err, 'Code exchange');
    }
    const set = toTokenSet(res, res.id_token ? res.claims() : undefined, this.cfg.userClaims, { dpop: !!dpop });
    // The key is kept only when the provider bound the tokens to it (`token_type: DPoP`).
    if (dpop && set.token_type === 'DPoP') set.dpop = dpop.material;
    return set;
  }

  /**
   * The userinfo claims of a fresh login (OpenID Connect Core §5.3), reduced to `userClaims` of primitive values,
   * never `sub`. With an ID token (`sub` given), openid-client requires the response's `sub` to equal it (§5.3.2,
   * token substitution). Without one (plain OAuth 2.0, e.g. GitHub's `/user`, which has no `sub`), the endpoint is
   * read as a protected resource: a JSON object is all that is required.
   */
  async userInfo(accessToken: string, sub: string | undefined, dpop?: DPoPKeyMaterial): Promise<Record<string, unknown>> {
    const config = this.require();
    const options = dpop ? { DPoP: client.getDPoPHandle(config, await dpopKey(dpop)) } : undefined;
    let body: unknown;
    try {
      if (sub !== undefined) body = await client.fetchUserInfo(config, accessToken, sub, options);
      else {
        const url = new URL(config.serverMetadata().userinfo_endpoint!);
        const res = await client.fetchProtectedResource(
          config,
          accessToken,
          url,
          'GET',
          undefined,
          new Headers({ accept: 'application/json' }),
          options,
        );
        if (res.status !== 200) {
          throw new ProviderError('token_endpoint_error', `Userinfo: the provider answered with unexpected status ${res.status}.`, {
            transient: res.status >= 500,
          });
        }
        body = await res.json().catch(() => undefined);
      }
    } catch (err) {
      if (causes(err).some((e) => (e as { code?: unknown }).code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED')) {
        throw new ProviderError('token_endpoint_error', "Userinfo: its sub differs from the ID token's.");
      }
      throw toProviderError(err, 'Userinfo');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ProviderError('token_endpoint_error', 'Userinfo: the response is not a JSON object.');
    }
    const claims: Record<string, unknown> = {};
    for (const name of this.cfg.userClaims) {
      const v = (body as Record<string, unknown>)[name];
      if (name !== 'sub' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) claims[name] = v;
    }
    return claims;
  }

  /** Refresh (RFC 6749 §6). */
  async refresh(refreshToken: string, dpop?: DPoPKeyMaterial): Promise<TokenSet> {
    const config = this.require();
    // The login's key, never a new one: the binding must not change (RFC 9449 §5).
    const options = dpop ? { DPoP: client.getDPoPHandle(config, await dpopKey(dpop)) } : undefined;
    let res;
    try {
      res = await telemetryOf(this.cfg).span('refresh', () => client.refreshTokenGrant(config, refreshToken, undefined, options));
    } catch (err) {
      throw toProviderError(err, 'Refresh');
    }
    return toTokenSet(res, res.id_token ? res.claims() : undefined, this.cfg.userClaims, { dpop: !!dpop });
  }

  /** RFC 7009 revocation; resolves false when the provider has no revocation endpoint. */
  async revoke(token: string, hint: 'refresh_token' | 'access_token'): Promise<boolean> {
    const config = this.require();
    if (!config.serverMetadata().revocation_endpoint) return false;
    try {
      await telemetryOf(this.cfg).span('revocation', () => client.tokenRevocation(config, token, { token_type_hint: hint }));
      return true;
    } catch (err) {
      throw toProviderError(err, 'Revocation');
    }
  }

  /**
   * Revokes the refresh token, then the access token (RFC 7009), each within a short deadline. Never
   * throws: logout and failed logins complete whatever the provider does. False when nothing was revoked
   * (no metadata yet, no revocation endpoint, a failure).
   */
  async revokeQuietly(refreshToken: string | undefined, accessToken: string | undefined): Promise<boolean> {
    if (!this.configuration) return false;
    let ok = false;
    const deadline = Math.min(this.cfg.httpTimeout, 3000);
    for (const [token, hint] of [
      [refreshToken, 'refresh_token'],
      [accessToken, 'access_token'],
    ] as const) {
      if (!token) continue;
      try {
        ok = (await withTimeout(this.revoke(token, hint), deadline, () => new Error('revocation timed out'))) || ok;
      } catch (err) {
        this.cfg.logger.warn('token revocation failed; the local logout completes anyway', {
          hint,
          error: err instanceof OAuthError ? err.code : 'timeout',
        });
        ok = false;
        break;
      }
    }
    return ok;
  }

  /**
   * RP-initiated logout URL, when the metadata is loaded and the provider has an end-session endpoint. Without
   * `idTokenHint` (a URL handed to a script), openid-client sends `client_id` instead (RP-Initiated Logout 1.0 §2).
   */
  endSessionUrl(idTokenHint: string | undefined, postLogoutRedirectUri: string | undefined): URL | undefined {
    const config = this.configuration;
    if (!config?.serverMetadata().end_session_endpoint) return undefined;
    const params: Record<string, string> = {};
    if (idTokenHint) params.id_token_hint = idTokenHint;
    if (postLogoutRedirectUri) params.post_logout_redirect_uri = postLogoutRedirectUri;
    return client.buildEndSessionUrl(config, params);
  }

  /**
   * What a back-channel logout token is checked against (Back-Channel Logout 1.0 §2.6): the provider's exact
   * issuer, its JWKS URI and the asymmetric algorithms it advertises for ID tokens (`none` and every HMAC
   * algorithm are dropped: a logout token is verified with the provider's public keys only). Plain data, no
   * openid-client type; the 503 `provider_unavailable` before discovery has succeeded.
   */
  logoutTokenVerification(): { issuer: string; jwksUri: string | undefined; algorithms: string[] } {
    const metadata = this.require().serverMetadata();
    const advertised = Array.isArray(metadata.id_token_signing_alg_values_supported) ? metadata.id_token_signing_alg_values_supported : ['RS256'];
    const algorithms = advertised.filter((a): a is string => typeof a === 'string' && /^(RS|PS|ES)(256|384|512)$|^ES256K$|^EdDSA$|^Ed25519$/.test(a));
    return { issuer: metadata.issuer, jwksUri: typeof metadata.jwks_uri === 'string' ? metadata.jwks_uri : undefined, algorithms };
  }

  /** Stops background work (discovery retries). */
  stop(): void {
    clearTimeout(this.retryTimer);
  }
}
