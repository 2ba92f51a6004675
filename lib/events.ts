import { EventEmitter } from 'node:events';

/** Common fields of every event. `session` is a hash of the session id, never the id (it is a credential). */
export interface OAuthEventBase {
  /** The instance's `name` (`default` for the unnamed instance). */
  provider: string;
  session: string;
  sub: string | undefined;
}

/** Payloads of the events emitted on `auth.events`. No payload ever holds a token. */
export interface OAuthEventMap {
  /** A login completed (code exchanged, tokens stored). */
  login: [OAuthEventBase & { durationMs: number }];
  /** Tokens were refreshed. */
  refresh: [OAuthEventBase & { durationMs: number; version: number }];
  /** A refresh failed; `reason` is the provider's error code (`invalid_grant`, ...) or `timeout`, `unavailable`, `sub_changed`. */
  refresh_failed: [OAuthEventBase & { reason: string; durationMs: number }];
  /** A logout completed; `revoked` says whether the provider confirmed revocation. */
  logout: [OAuthEventBase & { revoked: boolean }];
  /** A login failed at the callback; `reason` is the error code. */
  login_failed: [{ provider: string; reason: string }];
  /** A connection ended (disconnect, or the logout of the login instance); `revoked` as for `logout`. */
  disconnect: [OAuthEventBase & { revoked: boolean }];
}

/**
 * Typed emitter for logs and metrics.
 *
 * @example
 * ```ts
 * auth.events.on('refresh', ({ durationMs }) => metrics.histogram('oauth_refresh_ms', durationMs));
 * auth.events.on('refresh_failed', ({ reason }) => metrics.increment('oauth_refresh_failed', { reason }));
 * ```
 */
export class OAuthEvents extends EventEmitter<OAuthEventMap> {
  /** Called when a listener throws; a listener's bug never breaks a login, refresh or logout. */
  onListenerError: (name: string, err: unknown) => void = () => {};

  /** Sees every event before the listeners do (the package's metrics); never throws. */
  observer: (<K extends keyof OAuthEventMap>(name: K, ...args: OAuthEventMap[K]) => void) | undefined;

  override emit<K extends keyof OAuthEventMap>(name: K, ...args: OAuthEventMap[K]): boolean {
    try {
      this.observer?.(name, ...args);
    } catch {
      // metrics never break a flow
    }
    try {
      return (EventEmitter.prototype.emit as (this: EventEmitter, n: string, ...a: unknown[]) => boolean).call(this, name, ...args);
    } catch (err) {
      this.onListenerError(String(name), err);
      return true;
    }
  }
}
