import type { TokenStore } from './types.js';

interface Entry {
  value: string;
  expiresAt: number;
}

/** Options of {@link MemoryTokenStore}. */
export interface MemoryTokenStoreOptions {
  /** Called with a warning when used with `NODE_ENV=production`. Default `console.warn`. */
  warn?: (message: string) => void;
}

/**
 * A token store in this process's memory, for development and tests. Same semantics as
 * {@link RedisTokenStore} (TTL, compare-and-set, lock), but records are lost on restart and not shared
 * between processes: do not use it with several instances.
 */
export class MemoryTokenStore implements TokenStore {
  private readonly records = new Map<string, Entry>();
  private readonly locks = new Map<string, Entry>();
  private readonly claims = new Map<string, Entry>();
  private readonly indexes = new Map<string, { fields: Map<string, string>; expiresAt: number }>();

  constructor(options: MemoryTokenStoreOptions = {}) {
    if (process.env.NODE_ENV === 'production') {
      (options.warn ?? console.warn)(
        'express-oauth-client: MemoryTokenStore is in use with NODE_ENV=production; logins are lost on restart and not shared between instances. Use RedisTokenStore.',
      );
    }
  }

  private live(map: Map<string, Entry>, key: string): Entry | undefined {
    const entry = map.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      map.delete(key);
      return undefined;
    }
    return entry;
  }

  async get(sid: string): Promise<string | null> {
    return this.live(this.records, sid)?.value ?? null;
  }

  async set(sid: string, value: string, ttlMs: number): Promise<void> {
    this.records.set(sid, { value, expiresAt: Date.now() + ttlMs });
  }

  async replace(sid: string, expected: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.live(this.records, sid)?.value !== expected) return false;
    this.records.set(sid, { value, expiresAt: Date.now() + ttlMs });
    return true;
  }

  async deleteIf(sid: string, expected: string): Promise<void> {
    if (this.live(this.records, sid)?.value === expected) this.records.delete(sid);
  }

  async delete(sid: string): Promise<void> {
    this.records.delete(sid);
  }

  async lock(sid: string, owner: string, ttlMs: number): Promise<boolean> {
    if (this.live(this.locks, sid)) return false;
    this.locks.set(sid, { value: owner, expiresAt: Date.now() + ttlMs });
    return true;
  }

  async unlock(sid: string, owner: string): Promise<void> {
    if (this.live(this.locks, sid)?.value === owner) this.locks.delete(sid);
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    if (this.live(this.claims, key)) return false;
    this.claims.set(key, { value: '1', expiresAt: Date.now() + ttlMs });
    return true;
  }

  private index(kind: string, id: string) {
    const key = `${kind}:${id}`;
    const entry = this.indexes.get(key);
    if (entry && entry.expiresAt <= Date.now()) this.indexes.delete(key);
    return { key, entry: this.indexes.get(key) };
  }

  async indexAdd(kind: 'sub' | 'sid', id: string, field: string, value: string, ttlMs: number): Promise<void> {
    const { key, entry } = this.index(kind, id);
    const e = entry ?? { fields: new Map<string, string>(), expiresAt: 0 };
    e.fields.set(field, value);
    e.expiresAt = Math.max(e.expiresAt, Date.now() + ttlMs);
    this.indexes.set(key, e);
  }

  async indexGet(kind: 'sub' | 'sid', id: string): Promise<Record<string, string>> {
    return Object.fromEntries(this.index(kind, id).entry?.fields ?? []);
  }

  async indexRemove(kind: 'sub' | 'sid', id: string, fields: string[]): Promise<void> {
    const { key, entry } = this.index(kind, id);
    if (!entry) return;
    for (const f of fields) entry.fields.delete(f);
    if (entry.fields.size === 0) this.indexes.delete(key);
  }

  async ping(): Promise<void> {}

  /** Number of live records (for tests and diagnostics). */
  get size(): number {
    for (const key of [...this.records.keys()]) this.live(this.records, key);
    return this.records.size;
  }
}
