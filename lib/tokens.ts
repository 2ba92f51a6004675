import type { Configuration } from 'openid-client';
import type { AuthorizationServer, TokenSet } from './authorization-server.js';
import type { ResolvedConfig } from './config.js';
import { RecordCipher, RecordUnreadableError, randomToken, sha256, type TokenRecord } from './crypto.js';
import { LoginRequiredError, ProviderError, RefreshUnavailableError, StoreUnavailableError } from './errors.js';
import type { OAuthEvents } from './events.js';
import { withTimeout } from './http.js';

/** A record as read from the store: the ciphertext (the compare-and-set witness) and its plaintext. */
export interface LoadedRecord {
  raw: string;
  record: TokenRecord;
}

/** Options of one access-token request. */
export interface AccessTokenOptions {
  /** The API rejected this access token (401): refresh unless another writer already replaced it. */
  rejected?: string;
}

const MAX_CACHE = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Correlation id for logs and events: a hash of the session id, never the id itself (it is a credential). */
export const sessionTag = (sid: string) => sha256(sid).slice(0, 16);

/**
 * Owns token records: encryption (through {@link RecordCipher}), bounded store calls, expiry decisions,
 * and refresh with a single flight per session in this process and a store lock across processes.
 */
export class TokenService {
  private readonly inflight = new Map<string, Promise<LoadedRecord>>();
  /** Short-lived decrypted records by session id (see `tokenCacheMs`); refreshed and cleared by this process's own writes. */
  private readonly cache = new Map<string, { loaded: LoadedRecord; until: number }>();
  private writesSinceSweep = 0;
  private readonly lease: number;
  private readonly waitLimit: number;

  constructor(
    private readonly cfg: ResolvedConfig,
    private readonly cipher: RecordCipher,
    private readonly server: AuthorizationServer,
    private readonly events: OAuthEvents,
  ) {
    // The longest a live holder can take: re-read, token request, JWKS fetch (new signing key), write.
    const worstCase = 2 * cfg.httpTimeout + 3 * cfg.storeTimeout;
    // The lock outlives that, so a live holder never loses it mid-refresh.
    this.lease = worstCase + 2000;
    // Waiters give up once a live holder would have finished; a dead holder means 503 until the lease ends.
    this.waitLimit = worstCase + 500;
  }

  /** Runs a store call bounded by `storeTimeout`; any failure becomes a 503. */
  private bounded<T>(what: string, work: () => Promise<T>): Promise<T> {
    let promise: Promise<T>;
    try {
      promise = work();
    } catch (err) {
      return Promise.reject(new StoreUnavailableError(`Token store ${what} failed.`, err));
    }
    return withTimeout(promise, this.cfg.storeTimeout, () => new StoreUnavailableError(`Token store ${what} timed out.`)).catch((err) => {
      throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(`Token store ${what} failed.`, err);
    });
  }

  private remember(sid: string, loaded: LoadedRecord | null, { fromRead = false } = {}): void {
    const ms = this.cfg.tokenCacheMs;
    if (ms <= 0) return;
    const now = Date.now();
    const cached = this.cache.get(sid);
    // A read that started before this process's own refresh must not put the older record back.
    if (fromRead && loaded && cached && cached.until > now && cached.loaded.record.version > loaded.record.version) return;
    this.cache.delete(sid);
    if (!loaded) return;
    this.cache.set(sid, { loaded, until: now + ms });
    if (this.cache.size > MAX_CACHE) this.cache.delete(this.cache.keys().next().value!);
    // Decrypted tokens do not linger: expired entries are swept every so often.
    if (++this.writesSinceSweep >= 1000) {
      this.writesSinceSweep = 0;
      for (const [key, entry] of this.cache) if (entry.until <= now) this.cache.delete(key);
    }
  }

  /** Claims a one-time key (a login transaction) atomically across processes; false when already claimed. */
  claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return this.bounded('claim', () => this.cfg.tokenStore.lock(key, '1', ttlMs));
  }

  /** Forgets what this process cached about a session (logout, login, end of login). */
  forget(sid: string): void {
    this.cache.delete(sid);
  }

  /**
   * The record for a request: from the in-process cache while it is younger than `tokenCacheMs`,
   * otherwise one store read and a decrypt.
   */
  async readCached(sid: string): Promise<LoadedRecord | null> {
    const hit = this.cache.get(sid);
    if (hit) {
      if (hit.until > Date.now()) return hit.loaded;
      this.cache.delete(sid);
    }
    const loaded = await this.read(sid);
    this.remember(sid, loaded, { fromRead: true });
    return loaded;
  }

  /** Reads and opens a session's record from the store; an unreadable one is deleted and reads as none. */
  async read(sid: string): Promise<LoadedRecord | null> {
    const raw = await this.bounded('read', () => this.cfg.tokenStore.get(sid));
    if (raw === null || raw === undefined) return null;
    try {
      return { raw, record: await this.cipher.open(sid, raw) };
    } catch (err) {
      if (!(err instanceof RecordUnreadableError)) throw err;
      this.cfg.logger.warn('token record could not be decrypted; treating the session as logged out', {
        session: sessionTag(sid),
        reason: err.reason,
      });
      await this.bounded('delete', () => this.cfg.tokenStore.deleteIf(sid, raw)).catch(() => {});
      return null;
    }
  }

  /** Record built from a token response (login) or merged into the previous one (refresh). */
  buildRecord(tokens: TokenSet, previous?: TokenRecord): TokenRecord {
    const now = nowSeconds();
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
    return record;
  }

  /** How long the store keeps a record: the refresh token's life (tokenTtl), or the access token's. */
  ttlMs(record: TokenRecord): number {
    if (record.refresh_token || record.expires_at === undefined) return this.cfg.tokenTtl * 1000;
    return Math.max(60, record.expires_at - nowSeconds() + 60) * 1000;
  }

  /** Writes a fresh record unconditionally (login). */
  async write(sid: string, record: TokenRecord): Promise<LoadedRecord> {
    this.forget(sid);
    const raw = await this.cipher.seal(sid, record);
    await this.bounded('write', () => this.cfg.tokenStore.set(sid, raw, this.ttlMs(record)));
    return { raw, record };
  }

  /** Compare-and-set: writes only if the stored record is still `previous`. */
  async replace(sid: string, previous: string, record: TokenRecord): Promise<LoadedRecord | null> {
    const raw = await this.cipher.seal(sid, record);
    const ok = await this.bounded('write', () => this.cfg.tokenStore.replace(sid, previous, raw, this.ttlMs(record)));
    return ok ? { raw, record } : null;
  }

  async remove(sid: string): Promise<void> {
    this.forget(sid);
    await this.bounded('delete', () => this.cfg.tokenStore.delete(sid));
  }

  private refreshWindow(record: TokenRecord): number {
    if (record.expires_at === undefined) return 0;
    // Never refresh earlier than half the token's life, so short-lived tokens do not refresh on every call.
    return Math.min(this.cfg.refreshLeeway, Math.max(0, (record.expires_at - record.updated_at) / 2));
  }

  /** Expired, or about to within the refresh leeway. */
  isExpiring(record: TokenRecord): boolean {
    return record.expires_at !== undefined && record.expires_at - this.refreshWindow(record) <= nowSeconds();
  }

  isExpired(record: TokenRecord): boolean {
    return record.expires_at !== undefined && record.expires_at <= nowSeconds();
  }

  private usable(loaded: LoadedRecord, rejected: string | undefined): boolean {
    return !this.isExpiring(loaded.record) && loaded.record.access_token !== rejected;
  }

  /**
   * Returns a record with an access token worth sending, refreshing when it is expiring or was rejected.
   * `loaded` is what the caller already read in this request.
   */
  async ensureFresh(config: Configuration | undefined, sid: string, loaded: LoadedRecord, options: AccessTokenOptions = {}): Promise<LoadedRecord> {
    const { record } = loaded;
    const rejected = options.rejected;
    if (rejected === undefined ? !this.isExpiring(record) : record.access_token !== rejected) return loaded;
    if (!record.refresh_token) {
      // Nothing to refresh with: use it while it lasts; once expired or rejected, the login is over.
      if (rejected === undefined && !this.isExpired(record)) return loaded;
      this.forget(sid);
      await this.bounded('delete', () => this.cfg.tokenStore.deleteIf(sid, loaded.raw)).catch(() => {});
      throw new LoginRequiredError(
        rejected === undefined ? 'The access token expired and cannot be refreshed.' : 'The API rejected the access token.',
      );
    }
    if (!config) {
      if (!this.isExpired(record) && rejected === undefined) return loaded;
      throw new ProviderError('provider_unavailable', 'The identity provider metadata is not loaded yet.', { status: 503, retryAfter: 5 });
    }
    const key = `${sid}\u0000${rejected ?? ''}`;
    let flight = this.inflight.get(key);
    if (!flight) {
      flight = this.refreshLocked(config, sid, loaded, rejected)
        .then(
          (fresh) => {
            this.remember(sid, fresh);
            return fresh;
          },
          (err: unknown) => {
            if (err instanceof LoginRequiredError) this.forget(sid);
            throw err;
          },
        )
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, flight);
    }
    return flight;
  }

  /** Takes the cross-process lock, or waits for its holder's result. */
  private async refreshLocked(config: Configuration, sid: string, seen: LoadedRecord, rejected: string | undefined): Promise<LoadedRecord> {
    const owner = randomToken(16);
    const giveUpAt = Date.now() + this.waitLimit;
    let pause = 10;
    for (;;) {
      if (await this.bounded('lock', () => this.cfg.tokenStore.lock(sid, owner, this.lease))) {
        try {
          const current = await this.read(sid);
          if (!current) throw new LoginRequiredError('The login ended in another request.');
          if (current.raw !== seen.raw && this.usable(current, rejected)) return current;
          return await this.refreshNow(config, sid, current);
        } finally {
          await this.bounded('unlock', () => this.cfg.tokenStore.unlock(sid, owner)).catch(() => {});
        }
      }
      await sleep(pause);
      pause = Math.min(100, pause * 1.5);
      const current = await this.read(sid);
      if (!current) throw new LoginRequiredError('The login ended in another request.');
      if (current.raw !== seen.raw && this.usable(current, rejected)) return current;
      if (Date.now() >= giveUpAt) {
        if (rejected === undefined && !this.isExpired(current.record)) return current;
        throw new RefreshUnavailableError('Another refresh of this session did not finish in time.');
      }
    }
  }

  /** The refresh itself, under the lock, on the record just re-read. */
  private async refreshNow(config: Configuration, sid: string, current: LoadedRecord): Promise<LoadedRecord> {
    const started = Date.now();
    const session = sessionTag(sid);
    const sub = current.record.sub;
    let tokens: TokenSet;
    try {
      tokens = await this.server.refresh(config, current.record.refresh_token!);
    } catch (err) {
      const perr = err instanceof ProviderError ? err : new ProviderError('token_endpoint_error', 'Refresh failed.');
      const reason = perr.oauthError ?? (perr.code === 'token_endpoint_timeout' ? 'timeout' : perr.transient ? 'unavailable' : perr.code);
      this.events.emit('refresh_failed', { session, sub, reason, durationMs: Date.now() - started });
      if (perr.oauthError === 'invalid_grant') {
        // Another process may have rotated the refresh token a moment ago (its lease ran out): adopt its result.
        const again = await this.read(sid);
        if (again && again.raw !== current.raw && !this.isExpired(again.record)) return again;
        await this.bounded('delete', () => this.cfg.tokenStore.deleteIf(sid, current.raw)).catch(() => {});
        throw new LoginRequiredError('The refresh token is no longer valid.');
      }
      this.cfg.logger.warn('token refresh failed; keeping the current tokens', { session, reason });
      if (!this.isExpired(current.record)) return current;
      if (perr.transient) throw new RefreshUnavailableError('The identity provider is unavailable; try again shortly.', perr);
      throw perr;
    }
    if (tokens.sub !== undefined && sub !== undefined && tokens.sub !== sub) {
      this.events.emit('refresh_failed', { session, sub, reason: 'sub_changed', durationMs: Date.now() - started });
      this.cfg.logger.error('refresh returned an ID token for another subject; ending the login', { session });
      await this.bounded('delete', () => this.cfg.tokenStore.deleteIf(sid, current.raw)).catch(() => {});
      throw new LoginRequiredError('The identity provider returned another user.');
    }
    const next = this.buildRecord(tokens, current.record);
    const written = await this.replace(sid, current.raw, next);
    if (!written) {
      // Someone wrote after we read (only possible if our lease ran out): theirs is newer, keep it.
      const again = await this.read(sid);
      if (again && !this.isExpired(again.record)) return again;
      throw new RefreshUnavailableError('The token record changed during refresh.');
    }
    this.events.emit('refresh', { session, sub, durationMs: Date.now() - started, version: next.version });
    return written;
  }
}
