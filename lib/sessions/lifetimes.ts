import type { Request } from 'express';
import type { Instance } from '../instance.js';
import { namespaceOf, type OAuthSessionData } from '../session.js';
import { sessionTag } from '../tokens.js';

export type LifetimeEnd = 'absolute_lifetime' | 'idle_timeout';

/** Requests whose login this check has just ended, and why (read by `requireAuth()` for the 401 body). */
const endedLogins = new WeakMap<Request, LifetimeEnd>();

/** Why the request's login ended on this request, if a lifetime ended it. */
export function lifetimeEnded(req: Request): LifetimeEnd | undefined {
  return endedLogins.get(req);
}

/**
 * Session lifetimes (`absoluteLifetime`, `idleTimeout`), checked in memory on the session express-session
 * already loaded: no store read on a normal request. The idle clock is a `seenAt` stamp in the session,
 * moved only when it is older than a coarse step (a tenth of `idleTimeout`, at most a minute), so an active
 * user's session is written about once a minute, not on every request. Returns undefined when neither
 * option is set (the middleware then does nothing at all).
 *
 * When a lifetime has passed, the login ends as a logout does: the token record is deleted (awaited, so no
 * API call of this request can use it), the session forgets the user, the index forgets the session, and
 * `session_ended` fires. The request goes on anonymous: `requireAuth()` sends pages to login and gives
 * JSON callers `401 {"error":"login_required","reason":"idle_timeout"}`.
 */
export function createLifetimeCheck(instance: Instance): ((req: Request) => Promise<void> | undefined) | undefined {
  const { absoluteLifetime, idleTimeout } = instance.cfg;
  if (absoluteLifetime === undefined && idleTimeout === undefined) return undefined;
  const absoluteMs = absoluteLifetime === undefined ? Infinity : absoluteLifetime * 1000;
  const idleMs = idleTimeout === undefined ? Infinity : idleTimeout * 1000;
  const stepMs = Math.min(60_000, idleMs / 10);

  return function checkLifetime(req: Request): Promise<void> | undefined {
    const r = req as Request & { session?: object; sessionID?: string };
    const data = namespaceOf(r.session, instance.cfg.sessionKey);
    if (!data?.user || typeof data.loginAt !== 'number' || !r.sessionID) return undefined;
    const now = Date.now();
    const lastSeen = typeof data.seenAt === 'number' ? data.seenAt : data.loginAt;
    let reason: LifetimeEnd | undefined;
    if (now - data.loginAt >= absoluteMs) reason = 'absolute_lifetime';
    else if (now - lastSeen >= idleMs) reason = 'idle_timeout';
    if (!reason) {
      if (idleMs !== Infinity && now - lastSeen >= stepMs) data.seenAt = now;
      return undefined;
    }
    return endLogin(instance, r, r.sessionID, data, reason);
  };
}

async function endLogin(instance: Instance, req: Request, sid: string, data: OAuthSessionData, reason: LifetimeEnd): Promise<void> {
  const sub = data.user?.sub;
  const ids = data.idx;
  // The record goes first: once it is gone, neither this request nor a stale copy of the session can use the login.
  await instance.tokens.remove(sid);
  delete data.user;
  delete data.loginAt;
  delete data.seenAt;
  delete data.idx;
  endedLogins.set(req, reason);
  await instance.sessions.index.remove(sid, ids);
  instance.events.emit('session_ended', { provider: instance.cfg.name, session: sessionTag(sid), sub, reason });
}
