import { createRemoteJWKSet, customFetch, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { ResolvedConfig } from '../config.js';
import { createBoundedFetch } from '../http.js';

/** The event a logout token must carry (Back-Channel Logout 1.0 §2.4). */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Largest logout token accepted, in characters (the whole form body is capped by the route). */
export const MAX_LOGOUT_TOKEN = 8192;

/** A logout token that must be refused: `reason` is a fixed identifier for logs and events, never a value from the token. */
export class LogoutTokenError extends Error {
  constructor(
    readonly reason: string,
    /** The provider's keys could not be fetched: our fault, not the token's (answered 503). */
    readonly transient = false,
  ) {
    super(`logout token refused: ${reason}`);
    this.name = 'LogoutTokenError';
  }
}

/** What a valid logout token says: whose sessions end. */
export interface LogoutClaims {
  iss: string;
  sub?: string;
  sid?: string;
  jti: string;
  /** Epoch seconds until which the replay cache must remember `jti`. */
  rememberUntil: number;
}

/** What the protocol module tells us about the provider (no openid-client type crosses). */
export interface LogoutTokenSource {
  logoutTokenVerification(): { issuer: string; jwksUri: string | undefined; algorithms: string[] };
}

const JOSE_REASONS: Record<string, string> = {
  ERR_JWT_EXPIRED: 'expired',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'bad_signature',
  ERR_JWKS_NO_MATCHING_KEY: 'unknown_key',
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: 'unknown_key',
  ERR_JOSE_ALG_NOT_ALLOWED: 'algorithm_refused',
  ERR_JWS_INVALID: 'malformed',
  ERR_JWT_INVALID: 'malformed',
};

const CLAIM_REASONS: Record<string, string> = { iss: 'issuer_mismatch', aud: 'audience_mismatch', iat: 'iat_invalid', nbf: 'not_yet_valid' };

/**
 * Verifies logout tokens (Back-Channel Logout 1.0 §2.6) with jose: a compact JWS signed with one of the
 * provider's advertised asymmetric algorithms (`none` and HMAC refused before any key is looked at, so a
 * provider's public key can never be used as an HMAC secret), checked against its JWKS (fetched through
 * the package's bounded transport and cached), `iss`, `aud` = our client id, `iat` within `maxTokenAge`,
 * `jti`, the back-channel logout event, `sid` and/or `sub`, and no `nonce`.
 */
export class LogoutTokenVerifier {
  private jwks: { uri: string; get: JWTVerifyGetKey } | undefined;
  private readonly fetch: ReturnType<typeof createBoundedFetch>;

  constructor(
    private readonly cfg: ResolvedConfig,
    private readonly source: LogoutTokenSource,
  ) {
    this.fetch = createBoundedFetch(cfg.httpTimeout, cfg.maxResponseBytes);
  }

  private keys(uri: string): JWTVerifyGetKey {
    if (this.jwks?.uri !== uri) {
      const get = createRemoteJWKSet(new URL(uri), {
        timeoutDuration: this.cfg.httpTimeout,
        cooldownDuration: 30_000,
        cacheMaxAge: 10 * 60_000,
        [customFetch]: (url, options) => this.fetch(url, options),
      });
      this.jwks = { uri, get };
    }
    return this.jwks.get;
  }

  async verify(token: string, maxTokenAge: number): Promise<LogoutClaims> {
    if (token.length > MAX_LOGOUT_TOKEN) throw new LogoutTokenError('oversized');
    // A compact JWS: three base64url parts (an encrypted or unsecured token has another shape).
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) throw new LogoutTokenError('malformed');
    const { issuer, jwksUri, algorithms } = this.source.logoutTokenVerification();
    if (!jwksUri || algorithms.length === 0) throw new LogoutTokenError('no_provider_keys', true);
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new LogoutTokenError('malformed');
    }
    if (typeof alg !== 'string' || !algorithms.includes(alg)) throw new LogoutTokenError('algorithm_refused');

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys(jwksUri), {
        issuer,
        audience: this.cfg.clientId,
        algorithms,
        clockTolerance: this.cfg.clockTolerance,
        maxTokenAge,
        requiredClaims: ['iat', 'jti'],
      }));
    } catch (err) {
      throw joseFailure(err);
    }
    return checkClaims(payload, issuer, maxTokenAge + this.cfg.clockTolerance);
  }
}

function joseFailure(err: unknown): LogoutTokenError {
  // The bounded transport's own errors (timeout, too large, unreachable): the keys could not be fetched.
  if (err instanceof Error && err.name.startsWith('Fetch')) return new LogoutTokenError('keys_unavailable', true);
  const code = (err as { code?: unknown }).code;
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    const claim = (err as { claim?: unknown }).claim;
    return new LogoutTokenError(typeof claim === 'string' ? (CLAIM_REASONS[claim] ?? 'claim_invalid') : 'claim_invalid');
  }
  if (typeof code === 'string' && JOSE_REASONS[code]) return new LogoutTokenError(JOSE_REASONS[code]);
  // ERR_JWKS_TIMEOUT, ERR_JWKS_INVALID, a non-200 JWKS answer (ERR_JOSE_GENERIC), anything unexpected.
  if (code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID' || code === 'ERR_JOSE_GENERIC' || typeof code !== 'string') {
    return new LogoutTokenError('keys_unavailable', true);
  }
  return new LogoutTokenError('invalid');
}

/** The claims a logout token must (and must not) carry beyond the JWT checks (§2.4, §2.6 steps 4-7). */
function checkClaims(payload: JWTPayload, issuer: string, window: number): LogoutClaims {
  const events = payload.events;
  if (typeof events !== 'object' || events === null || Array.isArray(events)) throw new LogoutTokenError('events_missing');
  const event = (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT];
  if (typeof event !== 'object' || event === null || Array.isArray(event)) throw new LogoutTokenError('events_missing');
  if ('nonce' in payload) throw new LogoutTokenError('nonce_present');
  const sub = payload.sub;
  const sid = (payload as { sid?: unknown }).sid;
  if (sub !== undefined && (typeof sub !== 'string' || sub.length === 0 || sub.length > 1024)) throw new LogoutTokenError('sub_invalid');
  if (sid !== undefined && (typeof sid !== 'string' || sid.length === 0 || sid.length > 1024)) throw new LogoutTokenError('sid_invalid');
  if (sub === undefined && sid === undefined) throw new LogoutTokenError('no_sub_or_sid');
  const jti = payload.jti;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 512) throw new LogoutTokenError('jti_invalid');
  const iat = payload.iat as number;
  const rememberUntil = Math.max(iat + window, typeof payload.exp === 'number' ? payload.exp : 0) + 60;
  return { iss: issuer, sub, sid: sid, jti, rememberUntil };
}
