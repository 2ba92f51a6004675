import { parseRecordKey, type TokenStore } from './types.js';
import { ConfigError } from '../errors.js';

/**
 * The two commands the store needs, as node-redis v5+ spells them. Both `createClient()` and
 * `createCluster()` clients fit; so does anything else with the same shape.
 */
export interface RedisLikeClient {
  get(key: string): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  on?(event: 'error', listener: (err: unknown) => void): unknown;
  /** node-redis: false while disconnected; commands are then refused at once instead of queued. */
  readonly isReady?: boolean;
  listenerCount?(event: 'error'): number;
}

/** Options of {@link RedisTokenStore}. */
export interface RedisTokenStoreOptions {
  /** A connected node-redis client (`createClient()`) or cluster client (`createCluster()`). */
  client: RedisLikeClient;
  /**
   * Key prefix. Default `oauth:`. Keys are `{prefix}tok:{<sid>}` (record), `{prefix}lock:{<sid>}` (refresh
   * lock) and `{prefix}claim:{<key>}` (single-use login states and logout tokens); a named instance's record and lock are
   * `{prefix}tok:<name>:{<sid>}` and `{prefix}lock:<name>:{<sid>}` (same hash tag, same cluster slot).
   * The session index: `{prefix}idx:sub:{<hash>}` / `{prefix}idx:sid:{<hash>}` (one hash per subject and per provider session).
   */
  prefix?: string;
}

/**
 * Lua scripts behind the atomic operations, exported so another client (ioredis, say) can reuse them.
 * Each touches one key, or (`lockAndGet`) a session's lock and record, which share a hash tag and so a
 * cluster slot: they run unchanged on Redis Cluster.
 */
export const SCRIPTS = Object.freeze({
  set: "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1",
  replace: "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0",
  deleteIf: "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
  delete: "return redis.call('DEL', KEYS[1])",
  lock: "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end return 0",
  unlock: "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
  /** The lock (KEYS[1]) as `lock`; when taken, also the record (KEYS[2]): `{1, record}`, `{1}` without one, `{0}`. */
  lockAndGet:
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then local v = redis.call('GET', KEYS[2]) if v then return {1, v} end return {1} end return {0}",
  /** Session index: HSET field value, then raise the TTL to at least ARGV[3] ms (never lower it). */
  indexAdd:
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) local t = redis.call('PTTL', KEYS[1]) if t < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end return 1",
  indexGet: "return redis.call('HGETALL', KEYS[1])",
  indexRemove: "return redis.call('HDEL', KEYS[1], unpack(ARGV))",
});

/** A stored record as a client replied it (a string, or a Buffer with some client options), or null for none. */
function asRecord(value: unknown): string | null {
  return typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : null;
}

/**
 * Token store on Redis or Redis Cluster (node-redis). Records are stored as the middleware gives them
 * (ciphertext) with a TTL; writes are compare-and-set; the refresh lock is `SET NX PX` released by
 * compare-and-delete. A session's record and lock share a hash tag, so they live in one cluster slot.
 *
 * @example
 * ```ts
 * const redis = createClient({ url: process.env.REDIS_URL });
 * await redis.connect();
 * const tokenStore = new RedisTokenStore({ client: redis, prefix: 'myapp:oauth:' });
 * ```
 */
export class RedisTokenStore implements TokenStore {
  private readonly client: RedisLikeClient;
  private readonly prefix: string;

  constructor(options: RedisTokenStoreOptions) {
    if (!options || typeof options.client?.get !== 'function' || typeof options.client?.eval !== 'function') {
      throw new ConfigError(
        'RedisTokenStore: `client` must be a node-redis client (createClient() or createCluster()). Pass { client: redisClient }.',
      );
    }
    this.client = options.client;
    this.prefix = options.prefix ?? 'oauth:';
    if (typeof this.prefix !== 'string') throw new ConfigError('RedisTokenStore: `prefix` must be a string.');
  }

  /** `{prefix}<kind>:{<sid>}`, or `{prefix}<kind>:<name>:{<sid>}` for a named instance's key: the session id is the hash tag either way. */
  private keyOf(kind: 'tok' | 'lock', key: string): string {
    const named = parseRecordKey(key);
    return named ? `${this.prefix}${kind}:${named.name}:{${named.sid}}` : `${this.prefix}${kind}:{${key}}`;
  }

  private key(sid: string): string {
    return this.keyOf('tok', sid);
  }

  private lockKey(sid: string): string {
    return this.keyOf('lock', sid);
  }

  /** Fails fast while the client is disconnected, so nothing piles up in its offline queue. */
  private ready(): void {
    if (this.client.isReady === false) throw new Error('Redis is not connected');
  }

  private run(script: string, key: string | string[], args: Array<string | number>): Promise<unknown> {
    this.ready();
    return this.client.eval(script, { keys: typeof key === 'string' ? [key] : key, arguments: args.map(String) });
  }

  async get(sid: string): Promise<string | null> {
    this.ready();
    return asRecord(await this.client.get(this.key(sid)));
  }

  async set(sid: string, value: string, ttlMs: number): Promise<void> {
    await this.run(SCRIPTS.set, this.key(sid), [value, Math.max(1, Math.ceil(ttlMs))]);
  }

  async replace(sid: string, expected: string, value: string, ttlMs: number): Promise<boolean> {
    return Number(await this.run(SCRIPTS.replace, this.key(sid), [expected, value, Math.max(1, Math.ceil(ttlMs))])) === 1;
  }

  async deleteIf(sid: string, expected: string): Promise<void> {
    await this.run(SCRIPTS.deleteIf, this.key(sid), [expected]);
  }

  async delete(sid: string): Promise<void> {
    await this.run(SCRIPTS.delete, this.key(sid), []);
  }

  async lock(sid: string, owner: string, ttlMs: number): Promise<boolean> {
    return Number(await this.run(SCRIPTS.lock, this.lockKey(sid), [owner, Math.max(1, Math.ceil(ttlMs))])) === 1;
  }

  async unlock(sid: string, owner: string): Promise<void> {
    await this.run(SCRIPTS.unlock, this.lockKey(sid), [owner]);
  }

  async lockAndGet(sid: string, owner: string, ttlMs: number): Promise<{ locked: boolean; value: string | null }> {
    const reply = await this.run(SCRIPTS.lockAndGet, [this.lockKey(sid), this.key(sid)], [owner, Math.max(1, Math.ceil(ttlMs))]);
    const [taken, value] = Array.isArray(reply) ? (reply as unknown[]) : [];
    if (Number(taken) !== 1) return { locked: false, value: null };
    return { locked: true, value: asRecord(value) };
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    // The same atomic SET NX PX as the lock, under its own key space; a claim is never released.
    return Number(await this.run(SCRIPTS.lock, `${this.prefix}claim:{${key}}`, ['1', Math.max(1, Math.ceil(ttlMs))])) === 1;
  }

  private indexKey(kind: 'sub' | 'sid', id: string): string {
    // The index cannot share a hash tag with the sessions it lists (they live in many slots): each index
    // key is its own slot, every call touches one key, and ending a session then touches that session's
    // own keys (`tok:{<sid>}`) in their slot.
    return `${this.prefix}idx:${kind}:{${id}}`;
  }

  async indexAdd(kind: 'sub' | 'sid', id: string, field: string, value: string, ttlMs: number): Promise<void> {
    await this.run(SCRIPTS.indexAdd, this.indexKey(kind, id), [field, value, Math.max(1, Math.ceil(ttlMs))]);
  }

  async indexGet(kind: 'sub' | 'sid', id: string): Promise<Record<string, string>> {
    const flat = await this.run(SCRIPTS.indexGet, this.indexKey(kind, id), []);
    const out: Record<string, string> = {};
    if (Array.isArray(flat)) {
      for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
    } else if (flat && typeof flat === 'object') {
      // RESP3 clients may hand back a map.
      for (const [k, v] of flat instanceof Map ? flat : Object.entries(flat)) out[String(k)] = String(v);
    }
    return out;
  }

  async indexRemove(kind: 'sub' | 'sid', id: string, fields: string[]): Promise<void> {
    if (fields.length === 0) return;
    await this.run(SCRIPTS.indexRemove, this.indexKey(kind, id), fields);
  }

  async ping(): Promise<void> {
    // GET of a key that never exists: works on a single node and on a cluster client alike.
    this.ready();
    await this.client.get(`${this.prefix}ping:{ping}`);
  }

  attachErrorListener(listener: (err: unknown) => void): void {
    const client = this.client;
    if (typeof client.on !== 'function') return;
    if (typeof client.listenerCount === 'function' && client.listenerCount('error') > 0) return;
    client.on('error', listener);
  }
}
