import type { AxiosInstance } from 'axios';
import type { Request } from 'express';
import type { InstanceRole, RouteName } from './routes/table.js';
import type { TokenStore } from './token-store/types.js';

/** Receives the package's log lines. No line ever contains a token, a code or the client secret. */
export interface Logger {
  debug?(message: string, meta?: Record<string, unknown>): void;
  info?(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

/**
 * Paths of the routes `oauth()` mounts, relative to where it is mounted: `login` (GET, default
 * `/oauth/login`), `callback` (GET, default: the path of `redirectUri`), `logout` (POST, default
 * `/oauth/logout`; login instances) and `disconnect` (POST; connect instances). A named instance's
 * defaults are `/oauth/<name>/login`, `/oauth/<name>/logout`, `/oauth/<name>/disconnect`. The keys come
 * from the route table.
 */
export type OAuthPaths = { [K in RouteName]?: string };

/**
 * Options of {@link oauth}. `undefined` always means "use the default".
 */
export interface OAuthOptions {
  /**
   * The provider's issuer identifier. With no explicit endpoints, its metadata is discovered
   * (`/.well-known/openid-configuration`, then RFC 8414 `/.well-known/oauth-authorization-server`).
   * Must be https, except for localhost.
   */
  issuer?: string;
  /** Explicit authorization endpoint (plain OAuth 2.0 providers). Given with `tokenEndpoint`, disables discovery. */
  authorizationEndpoint?: string;
  /** Explicit token endpoint. */
  tokenEndpoint?: string;
  /** Explicit RFC 7009 revocation endpoint, used at logout. */
  revocationEndpoint?: string;
  /** Explicit userinfo endpoint. */
  userinfoEndpoint?: string;
  /** Explicit RP-initiated logout endpoint. */
  endSessionEndpoint?: string;
  /** Explicit JWKS URI, needed to validate ID tokens when endpoints are explicit and `openid` is in scope. */
  jwksUri?: string;
  /** Client identifier registered at the provider. */
  clientId: string;
  /**
   * Client secret. Never logged, never echoed in an error. Required unless `tokenEndpointAuthMethod` is
   * `private_key_jwt` (then it is not used).
   */
  clientSecret?: string;
  /** Absolute redirect URI registered at the provider; sent byte-for-byte in the authorization and token requests. */
  redirectUri: string;
  /** Requested scope, as a space-separated string or an array. Default `openid` with an issuer, none otherwise. */
  scope?: string | string[];
  /**
   * Base URL(s) of the API that receives the user's token. Only these origins are ever contacted by `req.oauthClient`.
   * Leave it out in a login-only app: `req.oauthClient` then refuses every call with `api_not_configured`.
   */
  apiBaseUrl?: string | string[];
  /** Where encrypted token records live: {@link RedisTokenStore} in production, {@link MemoryTokenStore} in development. */
  tokenStore: TokenStore;
  /** Secret(s) the record keys are derived from (HKDF), at least 32 characters. The first encrypts, all decrypt. */
  encryptionKey: string | string[];
  /** Route paths. */
  paths?: OAuthPaths;
  /**
   * Client authentication at the token and PAR endpoints. Default `client_secret_basic`. `client_secret_jwt`
   * signs an assertion with `clientSecret` (HS256, at least 32 characters); `private_key_jwt` signs it with
   * `clientAssertionKey` (RFC 7523, OpenID Connect Core §9).
   */
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt';
  /**
   * The private key(s) of `private_key_jwt`: a PEM string (PKCS#8), a private JWK, or several (an array or a
   * JWK Set `{ keys }`, each with a distinct `kid`) for rotation: the first signs, all are published at the
   * `jwks` route (`/oauth/jwks` by default) for providers that fetch the client's keys. Never logged or served.
   */
  clientAssertionKey?: string | Record<string, unknown> | Array<string | Record<string, unknown>> | { keys: Array<Record<string, unknown>> };
  /** Signing algorithm of the assertion. Default: the JWK's `alg`, else RS256 (RSA), ES256/384/512 (EC), EdDSA (Ed25519). */
  clientAssertionAlg?: string;
  /**
   * Pushed authorization requests (RFC 9126): the authorization request goes to the provider's PAR endpoint,
   * server to server, and the browser carries only `client_id` and `request_uri`. Default: when the provider's
   * metadata has `require_pushed_authorization_requests: true`.
   */
  pushedAuthorizationRequests?: boolean;
  /**
   * DPoP (RFC 9449): a key pair per login, kept only in the encrypted token record; the code exchange, every refresh
   * and every `req.oauthClient` / proxy call carry a proof signed with it. Default false.
   */
  dpop?: boolean;
  /** Extra authorization request parameters (e.g. `prompt`, `access_type`, `audience`). Protocol parameters cannot be overridden. */
  authorizationParams?: Record<string, string>;
  /** Deadline of every request to the provider and of `req.oauthClient` calls, in ms. Default 10000. */
  httpTimeout?: number;
  /** Largest response body accepted from the provider or the API, in bytes. Default 1 MiB. */
  maxResponseBytes?: number;
  /** Clock tolerance for ID token time claims, in seconds. Default 5. */
  clockTolerance?: number;
  /** Refresh this many seconds before the access token expires. Default 60. */
  refreshLeeway?: number;
  /** Lifetime of a token record in the store, in seconds, when the provider gives none. Default 14 days. */
  tokenTtl?: number;
  /** Bound on every token-store and session-store operation, in ms. Default 2000. */
  storeTimeout?: number;
  /**
   * How long, in ms, a process may reuse a token record it decrypted, before reading the store again.
   * Saves a Redis read and a decrypt on most API calls; this process's own refreshes and logouts update
   * it at once, another instance's refresh is seen within this time (a rejected token is re-read at once).
   * `0` disables it. Default 2000, at most 60000.
   */
  tokenCacheMs?: number;
  /** Name of the express-session cookie, cleared at logout. Default `connect.sid`. */
  sessionCookieName?: string;
  /**
   * Where the browser goes after logout (same origin as `redirectUri`, absolute or a path). Default: the app's origin
   * + `/`, sent as `post_logout_redirect_uri` when the provider has an end-session endpoint (register it there).
   */
  postLogoutRedirectUri?: string;
  /** Page to redirect to when the user denies access at the provider. Default: a 403 page. */
  accessDeniedRedirect?: string;
  /** Identity claims kept in the session (never tokens). Default `sub`, `name`, `email`, `preferred_username`, `picture`. */
  userClaims?: string[];
  /**
   * At login, after the code exchange, fetch the provider's userinfo endpoint and add its `userClaims` (strings, numbers,
   * booleans) to `req.oauth.user`. ID token claims win on conflict and `sub` never comes from userinfo. With an ID token
   * the userinfo `sub` must equal the ID token's. A failing userinfo request fails the login (502/504, fresh tokens
   * revoked). Default false.
   */
  fetchUserInfo?: boolean;
  /** Receives log lines. Default: warnings and errors to the console. */
  logger?: Logger;
  /** Allow `http://` provider and API URLs on hosts other than localhost. Never in production. Default false. */
  allowInsecureHttp?: boolean;
  /**
   * The instance's name, when an app has several providers (`github`, `nylas`): 1 to 32 lower-case letters,
   * digits or `-`. It namespaces the routes (`/oauth/<name>/login`...), the session data
   * (`req.session['oauth:<name>']`), the token record and its lock, and tags events. Default: the unnamed
   * instance, whose paths, session key (`req.session.oauth`) and record keys are unchanged from 1.x.
   */
  name?: string;
  /**
   * `'login'`: establishes who the user is (`req.oauth`, `requireAuth()`, `req.oauthClient`); at most one per
   * app. `'connect'`: links an API account to the current session (`req.oauthClients.<name>`,
   * `requireConnection(name)`) without changing who is logged in. Default `'login'` without `name`;
   * required with `name`.
   */
  role?: InstanceRole;
  /**
   * Keep the app's own session fields (its own login, a cart, a CSRF secret) when the session id is
   * regenerated at the callback (the fixation defence). `false` drops them (the other providers' data is
   * kept either way). Default true.
   */
  keepSessionData?: boolean;
  /**
   * Connect instances: refuse to connect unless the app considers the user logged in. `true`: the app's
   * login instance must be logged in; a function: the app's own test (e.g. `(req) => !!req.session.userId`).
   * Checked when the connection starts and again at its callback (401 `login_required`). Default: not required.
   */
  requireLogin?: boolean | ((req: Request) => boolean | Promise<boolean>);
  /**
   * Scopes a login may ask for on top of `scope` (incremental authorization): `GET {login}?scope=repo%20gist`
   * requests `scope` plus these (anything outside the list: 400). Default none.
   */
  allowedScopes?: string[];
  /**
   * OpenID Connect Back-Channel Logout 1.0: answer `POST /oauth/backchannel-logout` (`paths.backchannelLogout`;
   * register `<app origin>/oauth/backchannel-logout` at the provider as `backchannel_logout_uri`). A valid
   * logout token ends every session of its `sid` (or of its `sub`): token records deleted, sessions
   * destroyed, tokens revoked unless `revokeTokens: false`. `maxTokenAge`: seconds a logout token is
   * accepted after its `iat` (default 120). Needs `openid` in `scope` and sessions in a shared store. Default false.
   */
  backchannelLogout?: boolean | { revokeTokens?: boolean; maxTokenAge?: number };
  /** Seconds a login lasts from the moment it happened, refreshed or not; then the user logs in again. Default: no limit. */
  absoluteLifetime?: number;
  /** Seconds without a request after which a login ends. Default: no limit. */
  idleTimeout?: number;
  /** Keep the browser's `User-Agent` (first 200 characters) for `auth.sessions.list()`. Default false. */
  sessionUserAgent?: boolean;
}

/** Identity claims kept in the session after login. */
export interface OAuthUser {
  sub?: string;
  [claim: string]: unknown;
}

/** What a page may show about the stored token, without the token itself. */
export interface TokenInfo {
  /** When the access token expires, if the provider said. */
  expiresAt: Date | undefined;
  /** Granted scope, if the provider said. */
  scope: string | undefined;
  /** Whether a refresh token is held. */
  refreshable: boolean;
}

/** Per-request view of the login, on `req.oauth`. */
export interface OAuthRequestContext {
  /** True when this session completed a login (does not read the token store). */
  readonly isAuthenticated: boolean;
  /** Identity claims saved at login. */
  readonly user: OAuthUser | undefined;
  /** Reads the token record (one store read) and reports its expiry and scope; `undefined` when there is none. */
  tokenInfo(): Promise<TokenInfo | undefined>;
  /** Whether the named connect instance has connected an account to this session (does not read the token store). */
  isConnected(provider: string): boolean;
  /**
   * The URL (path) that starts a login or connection of `provider` (default: this request's login
   * instance), with extra `scope` (must be in that instance's `allowedScopes`) and a `returnTo`.
   */
  loginUrl(options?: { provider?: string; scope?: string | string[]; returnTo?: string }): string;
}

declare global {
  namespace Express {
    interface Request {
      /**
       * Axios instance that sends the user's access token to the configured API origins only,
       * refreshing it when needed. Created on first use, per request.
       */
      oauthClient: AxiosInstance;
      /** The login state of this request's session. */
      oauth: OAuthRequestContext;
      /**
       * The clients of the app's named instances, by name (`req.oauthClients.github`), each sending that
       * provider's token to that instance's `apiBaseUrl` only. An unknown name throws `config_invalid`; a
       * provider not connected rejects calls with `connection_required`.
       */
      oauthClients: Readonly<Record<string, AxiosInstance>>;
    }
  }
}
