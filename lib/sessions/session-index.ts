import type { ResolvedConfig } from '../config.js';
import { sha256 } from '../crypto.js';
import type { TokenService } from '../tokens.js';

/** What the index keeps per session (no token, no raw user or provider session id). */
export interface IndexEntry {
  /** Epoch ms of the login. */
  at: number;
  /** Hash of the subject (the `sub` index this session is in). */
  sub?: string;
  /** Hash of the provider's session id (the `sid` index this session is in), when the ID token had one. */
  sid?: string;
  /** The browser's User-Agent (first 200 characters), with `sessionUserAgent`. */
  ua?: string;
}

/** The index ids (hashes) a session is filed under; kept in its session data so logout can clean up. */
export interface IndexIds {
  sub?: string;
  sid?: string;
}

/**
 * The session index: to find this app's sessions by subject or by provider session id (back-channel
 * logout, `auth.sessions`). One small hash per subject and one per provider session id, field = session
 * id, value = {@link IndexEntry}; the ids in key names are SHA-256 of issuer, client id and the value, never
 * the raw `sub`/`sid`. Written at login, cleaned at logout, back-channel logout, expiry of a lifetime and
 * lazily when a listed session turns out to be gone; each key's TTL is raised to cover its longest session.
 * A normal request never touches it.
 */
export class SessionIndex {
  constructor(
    private readonly cfg: ResolvedConfig,
    private readonly tokens: TokenService,
    private readonly issuer: string,
  ) {}

  get enabled(): boolean {
    return this.tokens.hasIndex;
  }

  /** Index id of a subject or provider session id: a hash bound to this provider and client. */
  id(kind: 'sub' | 'sid', value: string): string {
    return sha256(`${kind}\0${this.cfg.name}\0${this.issuer}\0${this.cfg.clientId}\0${value}`);
  }

  /**
   * How long the index keeps a login: `absoluteLifetime` when set (no login lives longer); otherwise the
   * longest of the token record's TTL, the session cookie's and `tokenTtl` (refreshes do not touch the index).
   */
  ttlMs(recordTtlMs: number, cookieMaxAge: number | null | undefined): number {
    if (this.cfg.absoluteLifetime !== undefined) return this.cfg.absoluteLifetime * 1000 + 60_000;
    return Math.max(recordTtlMs, cookieMaxAge ?? 0, this.cfg.tokenTtl * 1000);
  }

  /** Files a fresh login; returns the ids to keep in its session data. */
  async add(sessionId: string, login: { sub?: string; sid?: string; at: number; userAgent?: string; ttlMs: number }): Promise<IndexIds> {
    if (!this.enabled || (!login.sub && !login.sid)) return {};
    const ids: IndexIds = {};
    if (login.sub) ids.sub = this.id('sub', login.sub);
    if (login.sid) ids.sid = this.id('sid', login.sid);
    const entry: IndexEntry = { at: login.at, ...ids };
    if (this.cfg.sessionUserAgent && login.userAgent) entry.ua = login.userAgent.slice(0, 200);
    const value = JSON.stringify(entry);
    await Promise.all([
      ids.sub ? this.tokens.indexAdd('sub', ids.sub, sessionId, value, login.ttlMs) : undefined,
      ids.sid ? this.tokens.indexAdd('sid', ids.sid, sessionId, value, login.ttlMs) : undefined,
    ]);
    return ids;
  }

  /** Removes a session from the indexes it is filed under (best effort: an entry left behind expires or is cleaned when listed). */
  async remove(sessionId: string, ids: IndexIds | undefined): Promise<void> {
    if (!this.enabled || !ids) return;
    await Promise.all([
      ids.sub ? this.tokens.indexRemove('sub', ids.sub, [sessionId]).catch(() => {}) : undefined,
      ids.sid ? this.tokens.indexRemove('sid', ids.sid, [sessionId]).catch(() => {}) : undefined,
    ]);
  }

  /** The sessions filed under one index id: session id -> entry (entries that do not parse are skipped). */
  async get(kind: 'sub' | 'sid', id: string): Promise<Map<string, IndexEntry>> {
    const out = new Map<string, IndexEntry>();
    if (!this.enabled) return out;
    for (const [sessionId, raw] of Object.entries(await this.tokens.indexGet(kind, id))) {
      try {
        const e = JSON.parse(raw) as IndexEntry;
        if (typeof e === 'object' && e !== null && typeof e.at === 'number') out.set(sessionId, e);
      } catch {
        // not ours: ignored
      }
    }
    return out;
  }
}
