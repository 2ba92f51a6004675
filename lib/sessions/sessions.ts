import type { Request } from 'express';
import type { Store } from 'express-session';
import { createOAuthError } from '../errors.js';
import type { Instance } from '../instance.js';
import { sha256 } from '../crypto.js';
import { SessionIndex } from './session-index.js';
import { endSessions } from './end-sessions.js';
import { namespaceOf } from '../session.js';

/** One active login of a user, as `auth.sessions.list()` shows it (never a session id or a token). */
export interface ActiveSession {
  /** Opaque handle for `auth.sessions.revoke()`: hashes, not the session id (which is a credential). */
  handle: string;
  /** When the login happened. */
  loginAt: Date;
  /** When its tokens were last written (the login, or the last refresh). */
  lastRefreshAt: Date | undefined;
  /** The browser's User-Agent, with the `sessionUserAgent` option. */
  userAgent: string | undefined;
  /** Whether this is the session of the request passed to `list(sub, { current: req })`. */
  current: boolean;
}

/**
 * `auth.sessions`: a user's logins across devices, for admin tools and a "sign out of all devices" button.
 *
 * @example
 * ```ts
 * const mine = await auth.sessions.list(req.oauth.user.sub, { current: req });
 * await auth.sessions.revokeAll(req.oauth.user.sub, { except: req }); // sign out everywhere else
 * ```
 */
export interface SessionsApi {
  /** The user's active logins in this app (each read from the token store: an admin operation, not a per-request one). */
  list(sub: string, options?: { current?: Request }): Promise<ActiveSession[]>;
  /** Ends one login (tokens revoked, record deleted, session destroyed). False when the handle matches no live login. */
  revoke(handle: string): Promise<boolean>;
  /** Ends every login of the user, except the one of `except` (a request or a handle). Returns how many ended. */
  revokeAll(sub: string, options?: { except?: Request | string }): Promise<number>;
  /** The handle of the request's own login, or undefined when it has none. */
  handleOf(req: Request): string | undefined;
}

const HANDLE = /^([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{32})$/;

/** Per-instance sessions machinery: the index, the app's session store (seen on the first request) and `auth.sessions`. */
export class Sessions {
  readonly index: SessionIndex;
  /** The app's express-session store, captured by the middleware on the first request. */
  store: Store | undefined;

  constructor(private readonly instance: Instance) {
    this.index = new SessionIndex(instance.cfg, instance.tokens, instance.server.recordIssuer);
  }

  private requireIndex(): void {
    if (!this.index.enabled) {
      throw createOAuthError(
        'config_invalid',
        'auth.sessions needs a token store with the session index (indexAdd, indexGet, indexRemove): RedisTokenStore and MemoryTokenStore have it.',
      );
    }
  }

  private handle(subId: string, sessionId: string): string {
    return `${subId}.${sha256(sessionId).slice(0, 32)}`;
  }

  handleOf(req: Request): string | undefined {
    const r = req as Request & { session?: object; sessionID?: string };
    const data = namespaceOf(r.session, this.instance.cfg.sessionKey);
    const subId = data?.idx?.sub;
    return subId && r.sessionID && data?.user ? this.handle(subId, r.sessionID) : undefined;
  }

  async list(sub: string, options: { current?: Request } = {}): Promise<ActiveSession[]> {
    this.requireIndex();
    const subId = this.index.id('sub', sub);
    const entries = await this.index.get('sub', subId);
    const current = options.current?.sessionID;
    const out: ActiveSession[] = [];
    const gone: string[] = [];
    for (const [sessionId, entry] of entries) {
      const loaded = await this.instance.tokens.read(sessionId);
      if (!loaded) {
        gone.push(sessionId);
        continue;
      }
      out.push({
        handle: this.handle(subId, sessionId),
        loginAt: new Date(entry.at),
        lastRefreshAt: new Date(loaded.record.updated_at * 1000),
        userAgent: entry.ua,
        current: sessionId === current,
      });
    }
    // Logins whose record expired leave the index as they are found.
    for (const sessionId of gone) await this.index.remove(sessionId, entries.get(sessionId));
    return out.sort((a, b) => b.loginAt.getTime() - a.loginAt.getTime());
  }

  async revoke(handle: string): Promise<boolean> {
    this.requireIndex();
    const m = typeof handle === 'string' ? HANDLE.exec(handle) : null;
    if (!m) return false;
    const entries = await this.index.get('sub', m[1]!);
    for (const [sessionId, entry] of entries) {
      if (sha256(sessionId).slice(0, 32) === m[2]) {
        return (await endSessions(this.instance, new Map([[sessionId, entry]]), 'revoked', { revoke: true })) > 0;
      }
    }
    return false;
  }

  async revokeAll(sub: string, options: { except?: Request | string } = {}): Promise<number> {
    this.requireIndex();
    const subId = this.index.id('sub', sub);
    const entries = await this.index.get('sub', subId);
    const except = typeof options.except === 'string' ? options.except : options.except ? this.handleOf(options.except) : undefined;
    for (const sessionId of [...entries.keys()]) if (this.handle(subId, sessionId) === except) entries.delete(sessionId);
    return endSessions(this.instance, entries, 'revoked', { revoke: true });
  }

  /** The public face, bound (`auth.sessions`). */
  api(): SessionsApi {
    return {
      list: (sub, options) => this.list(sub, options),
      revoke: (handle) => this.revoke(handle),
      revokeAll: (sub, options) => this.revokeAll(sub, options),
      handleOf: (req) => this.handleOf(req),
    };
  }
}
