import type { DPoPKeyMaterial } from './dpop.js';
import { ProviderError, safeOAuthErrorCode } from './errors.js';

/**
 * Token responses: what the package accepts from a token endpoint (RFC 6749 §5.1, strictly) and the
 * provider quirks smoothed over before openid-client parses them. The transport (`http.ts`) knows
 * nothing of this; the protocol module plugs {@link normalizeTokenResponse} into it.
 */

/** The fields kept from a token response, copied into a fresh object (nothing else survives). */
export interface TokenSet {
  access_token: string;
  token_type: string;
  expires_in?: number;
  refresh_token?: string;
  id_token?: string;
  scope?: string;
  /** Subject of the validated ID token, when one came back. */
  sub?: string;
  /** Safe identity claims of the validated ID token. */
  claims?: Record<string, unknown>;
  /** The provider's session id (`sid` claim of the validated ID token), for back-channel logout. */
  sid?: string;
  /** The login's DPoP key, when the tokens are DPoP-bound (`token_type` `DPoP`). */
  dpop?: DPoPKeyMaterial;
}

/** A token response breaks the strict parsing of RFC 6749 §5.1 in a way openid-client would let through. */
export class InvalidTokenResponseError extends Error {
  constructor(what: string) {
    super(`invalid token response: ${what}`);
    this.name = 'InvalidTokenResponseError';
  }
}

/**
 * Error codes some providers return with status 200 instead of the 400 of RFC 6749 §5.2 (GitHub does), and
 * the RFC 6749 code each one means. A provider with the same habit adds its codes here.
 */
const ERRORS_WITH_200: Record<string, string> = {
  bad_verification_code: 'invalid_grant',
  bad_refresh_token: 'invalid_grant',
  incorrect_client_credentials: 'invalid_client',
  unsupported_grant_type: 'unsupported_grant_type',
};

/** The error body openid-client gets to see: the provider's code made safe, nothing else of its answer. */
const errorBody = (error: unknown) => Buffer.from(JSON.stringify({ error: safeOAuthErrorCode(error) }));

/** What {@link normalizeTokenResponse} needs to know of the request. */
export interface TokenRequestInfo {
  /** A grant (`grant_type` in the form): token responses; otherwise revocation and the like. */
  grant: boolean;
  /** Whether an ID token is expected (`openid` in scope): one that nobody asked for is dropped. */
  keepIdToken: boolean;
}

/**
 * Normalises an answer to a token or revocation request before openid-client parses it: an OAuth error
 * sent with status 200 becomes the 400 it means; any error body is reduced to `{"error": code}` with the
 * code passed through {@link safeOAuthErrorCode} (a provider that echoes the refresh token, the code or
 * the client secret as its `error` leaks nothing into errors or logs); a non-numeric `expires_in` is
 * refused; and an `id_token` nobody asked for (no `openid` scope) is dropped instead of being validated
 * against an issuer that never promised one.
 */
export function normalizeTokenResponse(
  status: number,
  headers: Headers,
  body: Buffer,
  { grant, keepIdToken }: TokenRequestInfo,
): { status: number; body: Buffer } {
  if (!(headers.get('content-type') ?? '').includes('json')) return { status, body };
  if (status !== 200 && status < 400) return { status, body };
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return { status, body };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { status, body };
  const o = json as Record<string, unknown>;
  if (status >= 400) return 'error' in o ? { status, body: errorBody(o.error) } : { status, body };
  if (!grant) return { status, body };
  if (o.error !== undefined && o.access_token === undefined) {
    const mapped = typeof o.error === 'string' && Object.hasOwn(ERRORS_WITH_200, o.error) ? ERRORS_WITH_200[o.error] : o.error;
    return { status: 400, body: errorBody(mapped) };
  }
  // oauth4webapi would parseFloat a string ("3600abc"); RFC 6749 §5.1 makes it a JSON number.
  if (o.expires_in !== undefined && typeof o.expires_in !== 'number') throw new InvalidTokenResponseError('expires_in is not a number');
  if (!keepIdToken && 'id_token' in o) {
    delete o.id_token;
    return { status, body: Buffer.from(JSON.stringify(o)) };
  }
  return { status, body };
}

/** The members of a parsed token response this package reads (whatever parsed it). */
export interface TokenResponseFields {
  access_token?: unknown;
  token_type?: unknown;
  expires_in?: unknown;
  refresh_token?: unknown;
  id_token?: unknown;
  scope?: unknown;
}

/**
 * Copies the known fields of a token response into a fresh object, enforcing their types (RFC 6749
 * §5.1: a string `access_token`, `token_type` `bearer` in any case, a numeric `expires_in`), with the
 * `claims` of its validated ID token reduced to `userClaims` of primitive values.
 */
export function toTokenSet(
  res: TokenResponseFields,
  claims: Record<string, unknown> | undefined,
  userClaims: readonly string[],
  { dpop = false }: { dpop?: boolean } = {},
): TokenSet {
  if (typeof res.access_token !== 'string' || res.access_token.length === 0 || res.access_token.length > 16384) {
    throw new ProviderError('token_endpoint_error', 'Token response has no usable access_token.');
  }
  // `DPoP` only when the request carried a proof (RFC 9449 §5); a provider without DPoP answers `bearer`.
  const type = typeof res.token_type === 'string' ? res.token_type.toLowerCase() : undefined;
  if (type !== 'bearer' && !(dpop && type === 'dpop')) {
    throw new ProviderError('token_endpoint_error', `Token response token_type is not bearer${dpop ? ' or DPoP' : ''}.`);
  }
  const set: TokenSet = { access_token: res.access_token, token_type: type === 'dpop' ? 'DPoP' : 'bearer' };
  if (res.expires_in !== undefined) {
    if (typeof res.expires_in !== 'number' || !Number.isFinite(res.expires_in) || res.expires_in < 0 || res.expires_in > 10 * 365 * 86400) {
      throw new ProviderError('token_endpoint_error', 'Token response expires_in is not a valid number.');
    }
    set.expires_in = res.expires_in;
  }
  if (typeof res.refresh_token === 'string' && res.refresh_token.length > 0) set.refresh_token = res.refresh_token;
  if (typeof res.id_token === 'string') set.id_token = res.id_token;
  if (typeof res.scope === 'string') set.scope = res.scope;
  if (claims) {
    if (typeof claims.sub === 'string') set.sub = claims.sub;
    if (typeof claims.sid === 'string' && claims.sid.length > 0 && claims.sid.length <= 1024) set.sid = claims.sid;
    const safe: Record<string, unknown> = {};
    for (const name of userClaims) {
      const v = claims[name];
      if (v !== undefined && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) safe[name] = v;
    }
    set.claims = safe;
  }
  return set;
}
