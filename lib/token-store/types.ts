/**
 * Where encrypted token records live. A store only ever receives ciphertext (a JWE string) and moves it
 * opaquely: encryption, versions and expiry decisions belong to the middleware.
 *
 * The `sid` every method receives is an opaque record key: the session id for the unnamed `oauth()`
 * instance (as in 1.x), `<name>:{<sid>}` for a named one (see {@link recordKey}). A store that wraps it in
 * a hash tag (`tok:{${sid}}`) keeps working; {@link RedisTokenStore} writes named keys as
 * `{prefix}tok:<name>:{<sid>}`, so every record and lock of one session share a Redis Cluster slot.
 *
 * Every method must reject (not hang) when the backend is unavailable; the middleware additionally
 * bounds each call by `storeTimeout`.
 *
 * Implementing it for another client (ioredis, a database) takes the seven required methods below (and
 * `claim`, recommended). The atomic ones (`replace`, `deleteIf`, `lock`, `unlock`, `claim`) must be atomic
 * across processes. Every method receives and returns ciphertext or flags: a store never sees a token.
 *
 * @example
 * ```ts
 * // ioredis, in a few lines (the Lua scripts are exported for reuse)
 * import { SCRIPTS } from 'express-oauth-client';
 * const store: TokenStore = {
 *   get: (sid) => redis.get(`oauth:tok:{${sid}}`),
 *   set: async (sid, v, ttl) => void (await redis.set(`oauth:tok:{${sid}}`, v, 'PX', ttl)),
 *   replace: async (sid, exp, v, ttl) => (await redis.eval(SCRIPTS.replace, 1, `oauth:tok:{${sid}}`, exp, v, ttl)) === 1,
 *   deleteIf: async (sid, exp) => void (await redis.eval(SCRIPTS.deleteIf, 1, `oauth:tok:{${sid}}`, exp)),
 *   delete: async (sid) => void (await redis.del(`oauth:tok:{${sid}}`)),
 *   lock: async (sid, owner, ttl) => (await redis.set(`oauth:lock:{${sid}}`, owner, 'PX', ttl, 'NX')) === 'OK',
 *   unlock: async (sid, owner) => void (await redis.eval(SCRIPTS.unlock, 1, `oauth:lock:{${sid}}`, owner)),
 *   claim: async (key, ttl) => (await redis.set(`oauth:claim:{${key}}`, '1', 'PX', ttl, 'NX')) === 'OK',
 * };
 * ```
 */
export interface TokenStore {
  /** The record of a session, or `null` when there is none. */
  get(sid: string): Promise<string | null>;
  /** Writes a record unconditionally, with a time to live in milliseconds. */
  set(sid: string, value: string, ttlMs: number): Promise<void>;
  /**
   * Compare-and-set: writes `value` only if the stored record is exactly `expected` (the version the
   * writer read). Returns false, and writes nothing, when it is not (including when it is gone).
   */
  replace(sid: string, expected: string, value: string, ttlMs: number): Promise<boolean>;
  /** Deletes the record only if it is exactly `expected` (so a newer record written meanwhile survives). */
  deleteIf(sid: string, expected: string): Promise<void>;
  /** Deletes the record (and nothing else). */
  delete(sid: string): Promise<void>;
  /** Takes the per-session refresh lock for `ttlMs` if it is free (`SET NX PX`). Returns whether it was taken. */
  lock(sid: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock only if `owner` still holds it (compare-and-delete). */
  unlock(sid: string, owner: string): Promise<void>;
  /**
   * Optional: {@link lock}, and when the lock was taken, the record as it is right after ({@link get}), in one
   * atomic step (one round trip on the refresh's critical path instead of two). Without it, the middleware
   * calls `lock` and then `get`.
   */
  lockAndGet?(sid: string, owner: string, ttlMs: number): Promise<{ locked: boolean; value: string | null }>;
  /**
   * Claims a one-time key (the `state` of a login, hashed) for `ttlMs`: true the first time, false while
   * the claim lives (`SET NX PX`); never released. Keeps single-use claims apart from refresh locks.
   * Optional for stores written before it existed: without it, the claim is `lock(key, '1', ttlMs)`.
   */
  claim?(key: string, ttlMs: number): Promise<boolean>;
  /**
   * Session index (optional; needed by back-channel logout and `auth.sessions`): adds `field` = `value` to
   * the small hash named `kind` + `id` (`id` is already a hash, never a raw user or session id) and raises
   * its TTL to at least `ttlMs`. One key per call, so it runs unchanged on Redis Cluster.
   */
  indexAdd?(kind: 'sub' | 'sid', id: string, field: string, value: string, ttlMs: number): Promise<void>;
  /** Session index: every field and value of one index hash (`{}` when it does not exist). */
  indexGet?(kind: 'sub' | 'sid', id: string): Promise<Record<string, string>>;
  /** Session index: removes fields from one index hash (the hash goes when it is empty). */
  indexRemove?(kind: 'sub' | 'sid', id: string, fields: string[]): Promise<void>;
  /** Checks the backend answers (used by `ready()` and readiness probes). */
  ping?(): Promise<void>;
  /** Lets the middleware attach an error listener so a socket error never crashes the process. */
  attachErrorListener?(listener: (err: unknown) => void): void;
}

/**
 * The key a named instance's record is stored under: `<name>:{<sid>}` (the unnamed instance uses the bare
 * session id). Names are `[a-z][a-z0-9-]*`, so the form cannot be confused with a session id of
 * express-session (which has no braces).
 */
export function recordKey(name: string | undefined, sid: string): string {
  return name === undefined ? sid : `${name}:{${sid}}`;
}

const NAMED_KEY = /^([a-z][a-z0-9-]{0,31}):\{([^{}]*)\}$/;

/** The parts of a key made by {@link recordKey}: a named instance's name and session id, or `undefined` for a bare session id. */
export function parseRecordKey(key: string): { name: string; sid: string } | undefined {
  const m = NAMED_KEY.exec(key);
  return m ? { name: m[1]!, sid: m[2]! } : undefined;
}
