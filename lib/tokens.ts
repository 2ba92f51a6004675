import { telemetryOf } from './telemetry.js';
import type { TokenSet } from './token-response.js';
import type { ResolvedConfig } from './config.js';
import { sha256 } from './crypto.js';
import { RecordUnreadableError, buildRecord, isExpired, isExpiring, recordTtlMs, type RecordCipher, type TokenRecord } from './token-record.js';
import { StoreUnavailableError } from './errors.js';
import { errorMessage, withTimeout } from './util.js';
import { recordKey, type TokenStore } from './token-store/types.js';

/** A record as read from the store: the ciphertext (the compare-and-set witness) and its plaintext. */
export interface LoadedRecord {
  raw: string;
  record: TokenRecord;
}

const MAX_CACHE = 10_000;

/** Correlation id for logs and events: a hash of the session id, never the id itself (it is a credential). */
export const sessionTag = (sid: string) => sha256(sid).slice(0, 16);

/**
 * The one door to the token store: every store call bounded by `storeTimeout`, records sealed and opened
 * through {@link RecordCipher}, the short-lived in-process cache, the refresh lock and single-use claims.
 * The record itself (shape, building, expiry, TTL) is `token-record.ts`; refresh is `refresh.ts`.
 */
export class TokenService {
  /** Short-lived decrypted records by session id (see `tokenCacheMs`); refreshed and cleared by this process's own writes. */
  private readonly cache = new Map<string, { loaded: LoadedRecord; until: number }>();
  private writesSinceSweep = 0;

  private readonly store: TokenStore;
  /** The store key of a session's record and lock: the session id (unnamed instance) or `<name>:{<sid>}`. */
  private readonly keyOf: (sid: string) => string;

  constructor(
    private readonly cfg: ResolvedConfig,
    private readonly cipher: RecordCipher,
  ) {
    const name = cfg.named ? cfg.name : undefined;
    this.keyOf = name === undefined ? (sid) => sid : (sid) => recordKey(name, sid);
    this.store = cfg.tokenStore;
    this.store.attachErrorListener?.((err) => cfg.logger.error('token store connection error', { error: errorMessage(err) }));
  }

  /** Runs a store call bounded by `storeTimeout`; any failure becomes a 503. */
  bounded<T>(what: string, work: () => Promise<T>): Promise<T> {
    const telemetry = telemetryOf(this.cfg);
    const started = performance.now();
    let promise: Promise<T>;
    try {
      promise = work();
    } catch (err) {
      telemetry.store(what, 0, false);
      return Promise.reject(new StoreUnavailableError(`Token store ${what} failed.`, err));
    }
    return withTimeout(promise, this.cfg.storeTimeout, () => new StoreUnavailableError(`Token store ${what} timed out.`)).then(
      (value) => {
        telemetry.store(what, performance.now() - started, true);
        return value;
      },
      (err) => {
        telemetry.store(what, performance.now() - started, false);
        throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(`Token store ${what} failed.`, err);
      },
    );
  }

  /** Caches a record this process read or wrote (a read never replaces a newer cached version). */
  remember(sid: string, loaded: LoadedRecord | null, { fromRead = false } = {}): void {
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
    const store = this.store;
    return this.bounded('claim', () => (store.claim ? store.claim(key, ttlMs) : store.lock(key, '1', ttlMs)));
  }

  /** Takes the session's refresh lock across processes for `ttlMs`; false while another owner holds it. */
  lock(sid: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.bounded('lock', () => this.store.lock(this.keyOf(sid), owner, ttlMs));
  }

  /**
   * Takes the session's refresh lock and, when it was taken, gets the stored record as it is then (open it
   * with {@link open}): one store round trip with a store that has `lockAndGet`, `lock` then a read
   * otherwise (the lock released again if that read fails).
   */
  async lockAndGet(sid: string, owner: string, ttlMs: number): Promise<{ locked: boolean; raw: string | null }> {
    const store = this.store;
    if (store.lockAndGet) {
      const { locked, value } = await this.bounded('lock', () => store.lockAndGet!(this.keyOf(sid), owner, ttlMs));
      return { locked, raw: locked ? (value ?? null) : null };
    }
    if (!(await this.lock(sid, owner, ttlMs))) return { locked: false, raw: null };
    try {
      return { locked: true, raw: await this.getRaw(sid) };
    } catch (err) {
      await this.unlock(sid, owner).catch(() => {});
      throw err;
    }
  }

  /** Releases the refresh lock if `owner` still holds it. */
  unlock(sid: string, owner: string): Promise<void> {
    return this.bounded('unlock', () => this.store.unlock(this.keyOf(sid), owner));
  }

  /** Whether the session has a record (no decrypt): the logout guard of the session store asks this. */
  async exists(sid: string): Promise<boolean> {
    return (await this.getRaw(sid)) !== null;
  }

  /** The session's stored record as it is (ciphertext), `null` for none; one bounded store read. */
  private async getRaw(sid: string): Promise<string | null> {
    return (await this.bounded('read', () => this.store.get(this.keyOf(sid)))) ?? null;
  }

  /** Whether the store has the session index (`indexAdd`, `indexGet`, `indexRemove`). */
  get hasIndex(): boolean {
    const s = this.store;
    return typeof s.indexAdd === 'function' && typeof s.indexGet === 'function' && typeof s.indexRemove === 'function';
  }

  /** Session index: adds `field` to one index hash (see `lib/sessions/index.ts`). */
  indexAdd(kind: 'sub' | 'sid', id: string, field: string, value: string, ttlMs: number): Promise<void> {
    return this.bounded('index', () => this.store.indexAdd!(kind, id, field, value, ttlMs));
  }

  /** Session index: the fields of one index hash. */
  indexGet(kind: 'sub' | 'sid', id: string): Promise<Record<string, string>> {
    return this.bounded('index', () => this.store.indexGet!(kind, id));
  }

  /** Session index: removes fields of one index hash. */
  indexRemove(kind: 'sub' | 'sid', id: string, fields: string[]): Promise<void> {
    return this.bounded('index', () => this.store.indexRemove!(kind, id, fields));
  }

  /** Checks the store answers (readiness); a store without `ping` counts as answering. */
  ping(): Promise<void> {
    const store = this.store;
    return store.ping ? this.bounded('ping', () => store.ping!()) : Promise.resolve();
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
    return this.open(sid, await this.getRaw(sid));
  }

  /** Opens a stored record just read (`null`: none); an unreadable one is deleted and reads as none. */
  async open(sid: string, raw: string | null | undefined): Promise<LoadedRecord | null> {
    if (raw === null || raw === undefined) return null;
    try {
      return { raw, record: await this.cipher.open(sid, raw) };
    } catch (err) {
      if (!(err instanceof RecordUnreadableError)) throw err;
      this.cfg.logger.warn('token record could not be decrypted; treating the session as logged out', {
        session: sessionTag(sid),
        reason: err.reason,
      });
      await this.bounded('delete', () => this.store.deleteIf(this.keyOf(sid), raw)).catch(() => {});
      return null;
    }
  }

  /** Record built from a token response (login) or merged into the previous one (refresh). */
  buildRecord(tokens: TokenSet, previous?: TokenRecord): TokenRecord {
    return buildRecord(tokens, previous);
  }

  /** The store TTL of a record, in ms. */
  ttlOf(record: TokenRecord): number {
    return this.ttlMs(record);
  }

  private ttlMs(record: TokenRecord): number {
    return recordTtlMs(record, this.cfg.tokenTtl);
  }

  /** Writes a fresh record unconditionally (login). */
  async write(sid: string, record: TokenRecord): Promise<LoadedRecord> {
    this.forget(sid);
    const raw = await this.cipher.seal(sid, record);
    await this.bounded('write', () => this.store.set(this.keyOf(sid), raw, this.ttlMs(record)));
    return { raw, record };
  }

  /** Compare-and-set: writes only if the stored record is still `previous`. */
  async replace(sid: string, previous: string, record: TokenRecord): Promise<LoadedRecord | null> {
    const raw = await this.cipher.seal(sid, record);
    const ok = await this.bounded('write', () => this.store.replace(this.keyOf(sid), previous, raw, this.ttlMs(record)));
    return ok ? { raw, record } : null;
  }

  /** Deletes the record only if it is still `raw`, best effort (used when a login ends). */
  async discard(sid: string, raw: string): Promise<void> {
    this.forget(sid);
    await this.bounded('delete', () => this.store.deleteIf(this.keyOf(sid), raw)).catch(() => {});
  }

  async remove(sid: string): Promise<void> {
    this.forget(sid);
    await this.bounded('delete', () => this.store.delete(this.keyOf(sid)));
  }

  /** Expired, or about to within `refreshLeeway`. */
  isExpiring(record: TokenRecord): boolean {
    return isExpiring(record, this.cfg.refreshLeeway);
  }

  isExpired(record: TokenRecord): boolean {
    return isExpired(record);
  }
}
