import { RecordUnreadableError, SessionCipher } from './crypto.js';
import { DPoPKeyError, dpopKey, isDPoPKeyMaterial, type DPoPKeyMaterial } from './dpop.js';
import type { TokenSet } from './token-response.js';

/**
 * The token record: what is stored (encrypted) per logged-in session, how it is built from a token
 * response, checked when read back, and when it expires. Encryption itself is `crypto.ts`; storage,
 * caching and bounded store calls are `tokens.ts`.
 */

/** What a token record holds once decrypted. Never leaves the server. */
export interface TokenRecord {
  /** Monotonic version, incremented on every write (compare-and-set uses the ciphertext it lives in). */
  version: number;
  access_token: string;
  token_type: string;
  /** Epoch seconds; absent when the provider gave no `expires_in`. */
  expires_at?: number;
  refresh_token?: string;
  id_token?: string;
  scope?: string;
  /** Subject of the ID token, when there was one; must not change on refresh. */
  sub?: string;
  /** Epoch seconds of the write. */
  updated_at: number;
  /**
   * The DPoP key the tokens are bound to (RFC 9449): made at login, kept by every refresh. Present exactly
   * when `token_type` is `DPoP`; a DPoP record without a usable key does not open ("logged out").
   */
  dpop?: DPoPKeyMaterial;
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Whether a decrypted value has the shape of a {@link TokenRecord}. */
export function isTokenRecord(value: unknown): value is TokenRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.version === 'number' &&
    typeof r.access_token === 'string' &&
    typeof r.token_type === 'string' &&
    typeof r.updated_at === 'number' &&
    (r.expires_at === undefined || typeof r.expires_at === 'number') &&
    (r.refresh_token === undefined || typeof r.refresh_token === 'string') &&
    (r.id_token === undefined || typeof r.id_token === 'string') &&
    (r.scope === undefined || typeof r.scope === 'string') &&
    (r.sub === undefined || typeof r.sub === 'string') &&
    (r.dpop === undefined ? r.token_type.toLowerCase() !== 'dpop' : isDPoPKeyMaterial(r.dpop))
  );
}

/**
 * The record built from a token response (login), or merged into the previous one (refresh): a refresh
 * response without `refresh_token`, `id_token` or `scope` keeps the previous ones; `sub` never changes.
 */
export function buildRecord(tokens: TokenSet, previous?: TokenRecord, now = nowSeconds()): TokenRecord {
  const record: TokenRecord = {
    version: (previous?.version ?? 0) + 1,
    access_token: tokens.access_token,
    token_type: tokens.token_type,
    updated_at: now,
  };
  if (tokens.expires_in !== undefined) record.expires_at = now + tokens.expires_in;
  const refresh = tokens.refresh_token ?? previous?.refresh_token;
  if (refresh) record.refresh_token = refresh;
  const idToken = tokens.id_token ?? previous?.id_token;
  if (idToken) record.id_token = idToken;
  const scope = tokens.scope ?? previous?.scope;
  if (scope) record.scope = scope;
  const sub = previous?.sub ?? tokens.sub;
  if (sub) record.sub = sub;
  // The binding never changes: a refresh keeps the login's key.
  const dpop = previous?.dpop ?? tokens.dpop;
  if (dpop) record.dpop = dpop;
  return record;
}

/** How long the store keeps a record: the refresh token's life (`tokenTtl` seconds), or the access token's. */
export function recordTtlMs(record: TokenRecord, tokenTtl: number): number {
  if (record.refresh_token || record.expires_at === undefined) return tokenTtl * 1000;
  return Math.max(60, record.expires_at - nowSeconds() + 60) * 1000;
}

/** Seconds before expiry at which a refresh starts: `leeway`, but never earlier than half the token's life. */
function refreshWindow(record: TokenRecord, leeway: number): number {
  if (record.expires_at === undefined) return 0;
  return Math.min(leeway, Math.max(0, (record.expires_at - record.updated_at) / 2));
}

/** Expired, or about to within the refresh leeway (seconds). */
export function isExpiring(record: TokenRecord, leeway: number): boolean {
  return record.expires_at !== undefined && record.expires_at - refreshWindow(record, leeway) <= nowSeconds();
}

export function isExpired(record: TokenRecord): boolean {
  return record.expires_at !== undefined && record.expires_at <= nowSeconds();
}

/**
 * Seals and opens token records with a {@link SessionCipher}: a record opens only under the session id,
 * issuer and client id it was written for, and only with the shape of a {@link TokenRecord}.
 */
export class RecordCipher extends SessionCipher {
  override async open(sid: string, value: string): Promise<TokenRecord> {
    const record = await super.open(sid, value);
    if (!isTokenRecord(record)) throw new RecordUnreadableError('wrong shape');
    if (record.dpop) {
      try {
        await dpopKey(record.dpop);
      } catch (err) {
        throw new RecordUnreadableError(err instanceof DPoPKeyError ? `dpop: ${err.reason}` : 'dpop');
      }
    }
    return record;
  }
}

export { RecordUnreadableError };
