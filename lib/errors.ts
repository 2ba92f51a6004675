/**
 * Every error this package throws to the application, or renders itself, is an {@link OAuthError}
 * with a stable {@link OAuthErrorCode} and an HTTP `status`, so Express's error handling does the
 * right thing and callers can `switch (err.code)`.
 *
 * Messages never contain a token, a code, a secret or anything the provider sent back verbatim.
 */

/** The stable error codes. Callers may `switch` on them; new codes are added only in minor releases. */
export type OAuthErrorCode =
  | 'config_invalid'
  | 'session_missing'
  | 'login_required'
  | 'callback_invalid'
  | 'access_denied'
  | 'authorization_failed'
  | 'cross_site_request'
  | 'method_not_allowed'
  | 'login_busy'
  | 'token_endpoint_error'
  | 'token_endpoint_timeout'
  | 'id_token_invalid'
  | 'origin_not_allowed'
  | 'api_not_configured'
  | 'upstream_timeout'
  | 'store_unavailable'
  | 'refresh_unavailable'
  | 'provider_unavailable'
  // API proxy (oauthProxy): a browser path that would leave the mapped prefix, a malformed or smuggling
  // request, an upload over the cap, an upstream that failed or answered beyond the caps.
  | 'invalid_path'
  | 'invalid_request'
  | 'request_too_large'
  | 'upstream_error'
  // Several providers: a route needs a provider the session has not connected; the API wants more scope.
  | 'connection_required'
  | 'insufficient_scope';

/** What a code means over HTTP. */
interface ErrorSpec {
  /** HTTP status. */
  status: number;
  /** Seconds a client should wait before retrying (sent as `Retry-After`). */
  retryAfter?: number;
  /** Whether the message may be shown to the end user; default: statuses below 500. */
  expose?: boolean;
}

/**
 * The one table of what each code means over HTTP: status, `Retry-After` and whether the message is shown.
 * Every error is built from it ({@link createOAuthError} and the classes below), so a code never answers
 * with two statuses by accident.
 */
export const ERROR_SPECS: { readonly [C in OAuthErrorCode]: Readonly<ErrorSpec> } = {
  config_invalid: { status: 500, expose: false },
  session_missing: { status: 500, expose: false },
  login_required: { status: 401 },
  callback_invalid: { status: 400 },
  access_denied: { status: 403 },
  authorization_failed: { status: 400 },
  cross_site_request: { status: 403 },
  method_not_allowed: { status: 405 },
  login_busy: { status: 429, retryAfter: 60 },
  token_endpoint_error: { status: 502 },
  token_endpoint_timeout: { status: 504 },
  id_token_invalid: { status: 502 },
  origin_not_allowed: { status: 500, expose: false },
  api_not_configured: { status: 500, expose: false },
  upstream_timeout: { status: 504 },
  store_unavailable: { status: 503, retryAfter: 5 },
  refresh_unavailable: { status: 503, retryAfter: 2 },
  provider_unavailable: { status: 503, retryAfter: 5 },
  invalid_path: { status: 400 },
  invalid_request: { status: 400 },
  request_too_large: { status: 413 },
  upstream_error: { status: 502 },
  connection_required: { status: 401 },
  insufficient_scope: { status: 403 },
};

/** Options of an error built from {@link ERROR_SPECS}; each one overrides the table for this error only. */
interface OAuthErrorOptions {
  cause?: unknown;
  status?: number;
  retryAfter?: number;
  expose?: boolean;
}

/**
 * Base class of every error raised by express-oauth-client.
 *
 * @example
 * ```ts
 * app.use((err, req, res, next) => {
 *   if (err instanceof OAuthError && err.code === 'login_required') return res.redirect('/oauth/login');
 *   next(err);
 * });
 * ```
 */
export class OAuthError extends Error {
  /** Stable machine-readable code. */
  readonly code: OAuthErrorCode;
  /** HTTP status the error maps to. */
  readonly status: number;
  /** Alias of `status`, read by Express's default error handler. */
  readonly statusCode: number;
  /** Seconds a client should wait before retrying (set on 503 errors). */
  readonly retryAfter: number | undefined;
  /** Whether `message` is safe to show to the end user (Express reads `expose`). */
  readonly expose: boolean;

  constructor(code: OAuthErrorCode, status: number, message: string, options: { cause?: unknown; retryAfter?: number; expose?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.statusCode = status;
    this.retryAfter = options.retryAfter;
    this.expose = options.expose ?? status < 500;
  }

  /** A JSON body safe to send to a browser: the code (and, for a few codes, the provider's name and a scope), nothing else. */
  toJSON(): { error: OAuthErrorCode } {
    return { error: this.code };
  }
}

/** Builds an {@link OAuthError} whose status, `Retry-After` and exposure come from {@link ERROR_SPECS}. */
export function createOAuthError(code: OAuthErrorCode, message: string, options: OAuthErrorOptions = {}): OAuthError {
  return new OAuthError(code, options.status ?? ERROR_SPECS[code].status, message, specOptions(code, options));
}

function specOptions(code: OAuthErrorCode, options: OAuthErrorOptions): { cause?: unknown; retryAfter?: number; expose?: boolean } {
  const spec = ERROR_SPECS[code];
  return {
    cause: options.cause,
    retryAfter: options.retryAfter ?? spec.retryAfter,
    expose: options.expose ?? spec.expose,
  };
}

/** Invalid options passed to `oauth()` or a store; thrown at startup. */
export class ConfigError extends OAuthError {
  constructor(message: string) {
    super('config_invalid', ERROR_SPECS.config_invalid.status, message, specOptions('config_invalid', {}));
  }
}

/** No usable login for this session (never logged in, logged out, refresh token revoked, record unreadable). */
export class LoginRequiredError extends OAuthError {
  constructor(message = 'Login required.') {
    super('login_required', ERROR_SPECS.login_required.status, message);
  }
}

/** A callback that failed validation: forged, replayed, expired or malformed. */
export class CallbackError extends OAuthError {
  /** Why the callback was refused, as a fixed identifier for logs and the `login_failed` event (never a value from the request). */
  readonly reason: string;

  constructor(
    message: string,
    code: 'callback_invalid' | 'access_denied' | 'authorization_failed' = 'callback_invalid',
    status: number = ERROR_SPECS[code].status,
    reason: string = code,
  ) {
    super(code, status, message);
    this.reason = reason;
  }
}

/**
 * The only way an `error` string sent by a provider reaches a message, {@link ProviderError.oauthError},
 * an event `reason` or a log line: a code of 1 to 40 lower-case letters and underscores (every code of
 * RFC 6749, RFC 7009, OpenID Connect and the IANA OAuth error registry has this shape) is kept, anything
 * else becomes `invalid_response`. A hostile or buggy endpoint that answers with the refresh token, the
 * code or the client secret it was sent as its `error` therefore gets nothing of it logged.
 *
 * @example
 * ```ts
 * safeOAuthErrorCode('invalid_grant'); // 'invalid_grant'
 * safeOAuthErrorCode('8xLrM2...refresh-token...'); // 'invalid_response'
 * ```
 */
export function safeOAuthErrorCode(value: unknown): string {
  return typeof value === 'string' && /^[a-z_]{1,40}$/.test(value) ? value : 'invalid_response';
}

/** The token endpoint (or another provider endpoint) answered badly or too slowly. */
export class ProviderError extends OAuthError {
  /**
   * The OAuth `error` code the provider returned, when it returned one (e.g. `invalid_grant`), passed
   * through {@link safeOAuthErrorCode}: `invalid_response` when the provider's value was not a plain code.
   */
  readonly oauthError: string | undefined;
  /** True for faults worth retrying later (5xx, timeouts, connection failures). */
  readonly transient: boolean;

  constructor(
    code: 'token_endpoint_error' | 'token_endpoint_timeout' | 'id_token_invalid' | 'provider_unavailable',
    message: string,
    options: { oauthError?: string; transient?: boolean; cause?: unknown; status?: number; retryAfter?: number } = {},
  ) {
    super(code, options.status ?? ERROR_SPECS[code].status, message, specOptions(code, options));
    this.oauthError = options.oauthError === undefined ? undefined : safeOAuthErrorCode(options.oauthError);
    this.transient = options.transient ?? false;
  }
}

/** The 503 for requests that need the provider's metadata before discovery has succeeded. */
export function providerNotLoaded(): ProviderError {
  return new ProviderError('provider_unavailable', 'The identity provider metadata is not loaded yet.');
}

/** The token store (Redis) or the session store failed or was too slow. */
export class StoreUnavailableError extends OAuthError {
  constructor(message = 'The session store is unavailable.', cause?: unknown) {
    super('store_unavailable', ERROR_SPECS.store_unavailable.status, message, specOptions('store_unavailable', { cause: sanitizeCause(cause) }));
  }
}

/** A refresh could not run now (lock held by a process that did not finish, or a transient provider fault). */
export class RefreshUnavailableError extends OAuthError {
  constructor(message = 'Token refresh is temporarily unavailable.', cause?: unknown) {
    super(
      'refresh_unavailable',
      ERROR_SPECS.refresh_unavailable.status,
      message,
      specOptions('refresh_unavailable', { cause: sanitizeCause(cause) }),
    );
  }
}

/**
 * `req.oauthClient` was asked to send a request to an origin that is not in `apiBaseUrl`, or in a way that
 * would let something other than its destination check choose the connection (a custom `adapter`).
 */
export class OriginNotAllowedError extends OAuthError {
  /**
   * @param origin - the refused origin (or a short description), used in the default message
   * @param message - replaces the default message; must not contain a token
   */
  constructor(origin: string, message?: string) {
    super(
      'origin_not_allowed',
      ERROR_SPECS.origin_not_allowed.status,
      message ?? `Refused to send a request to ${origin}: it is not one of the configured apiBaseUrl origins.`,
      specOptions('origin_not_allowed', {}),
    );
  }
}

/** A `req.oauthClient` call to the API did not complete (headers and body) within `httpTimeout`. */
export class UpstreamTimeoutError extends OAuthError {
  constructor(cause?: unknown) {
    super('upstream_timeout', ERROR_SPECS.upstream_timeout.status, 'The API did not answer in time.', { cause: sanitizeCause(cause) });
  }
}

/**
 * A route needs a provider this session has not connected (`requireConnection()`, or `req.oauthClients.<name>`
 * with no usable token). JSON callers get `401 {"error":"connection_required","provider":"<name>"}`; pages
 * are sent to `loginUrl` (that provider's login) with a `returnTo`.
 */
export class ConnectionRequiredError extends OAuthError {
  constructor(
    /** The instance's `name`. */
    readonly provider: string,
    /** Path of that instance's login route (mount path included). */
    readonly loginUrl: string,
    message = `A connection to ${provider} is required.`,
  ) {
    super('connection_required', ERROR_SPECS.connection_required.status, message);
  }

  override toJSON(): { error: OAuthErrorCode; provider: string } {
    return { error: this.code, provider: this.provider };
  }
}

/**
 * The API answered `403` with `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750 §3.1): the
 * token lacks a scope. `scope` is what the API said it needs (when it said, and it is a plain scope list);
 * `loginUrl` asks the provider for it (incremental authorization: the scopes must be in `allowedScopes`).
 */
export class InsufficientScopeError extends OAuthError {
  constructor(
    readonly provider: string,
    readonly scope: string | undefined,
    readonly loginUrl: string,
    cause?: unknown,
  ) {
    super('insufficient_scope', ERROR_SPECS.insufficient_scope.status, `The ${provider} API needs more scope${scope ? ` (${scope})` : ''}.`, {
      cause: sanitizeCause(cause),
    });
  }

  override toJSON(): { error: OAuthErrorCode; provider: string; scope?: string } {
    return this.scope === undefined
      ? { error: this.code, provider: this.provider }
      : { error: this.code, provider: this.provider, scope: this.scope };
  }
}

/**
 * Keep only what is safe of an upstream error (its name, code and message) so a `cause` chain never
 * carries a request object, headers or a body that could hold a token or the client secret.
 */
export function sanitizeCause(cause: unknown): unknown {
  if (cause === undefined || cause === null) return undefined;
  if (cause instanceof OAuthError) return cause;
  if (cause instanceof Error) {
    const safe = new Error(cause.message);
    safe.name = cause.name;
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') (safe as Error & { code?: string }).code = code;
    return safe;
  }
  return undefined;
}
