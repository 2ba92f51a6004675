import type { Store } from 'express-session';

/**
 * Answers whether the login a session claims still exists (its token record is in the store), or
 * `undefined` when the session claims no login of this instance (connections never end the session).
 */
export type LoginCheck = (sid: string, session: object) => Promise<boolean> | undefined;

interface GuardedStore {
  checks: Set<LoginCheck>;
}

const guarded = new WeakMap<Store, GuardedStore>();

/** Sessions whose login this request has just stored: their next write needs no check. */
const freshLogins = new WeakSet<object>();

/** Marks a session whose token record the current request has just written (the callback), sparing the guard's read. */
export function markFreshLogin(session: object): void {
  freshLogins.add(session);
}

/** Withdraws {@link markFreshLogin} (the login failed after all). */
export function unmarkFreshLogin(session: object): void {
  freshLogins.delete(session);
}

/**
 * Sessions a login has just saved (the callback's own save, see {@link markFreshLogin}), with the id and
 * the content written. express-session saves a regenerated session once more at the end of the request (its
 * bookkeeping still holds the id the request came with, so it counts the session as unsaved): that write,
 * of the same content under the same id, is answered without going to the store.
 */
const loginSaves = new WeakMap<object, { sid: string; content: string }>();

/** What a session write stores, but its cookie (express-session refreshes the cookie's expiry before each save). */
function contentOf(session: unknown): string {
  const data: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(session as object)) if (key !== 'cookie') data[key] = value;
  return JSON.stringify(data);
}

type SetCallback = (err?: unknown) => void;
type SessionLike = Record<string, { user?: unknown } | undefined> | null | undefined;

/** Whether a session claims a login or connection of any instance (`oauth`, or a named `oauth:<name>`). */
function claimsLogin(session: SessionLike): boolean {
  if (!session || typeof session !== 'object') return false;
  for (const key of Object.keys(session)) {
    if ((key === 'oauth' || key.startsWith('oauth:')) && session[key]?.user !== undefined) return true;
  }
  return false;
}

/**
 * Logout is final (RFC 9700 §4.14 and the BFF draft: the server-side session ends): a request that loaded
 * a session before its logout and saves it afterwards (a slow route writing to the session, or an
 * attacker looping a route with a stolen cookie) would otherwise write the logged-in session back under
 * its old id, and `req.oauth.isAuthenticated` would be true again for the session's whole lifetime.
 *
 * The guard wraps the app's session store's `set`, once per store object: after a session that claims a
 * login is written, the login's token record is checked; when it is gone (logout deleted it, or the login
 * ended), the session just written is destroyed again. Checking after the write closes the race: logout
 * deletes the record before it destroys the session, so a write that lands after the destroy always sees
 * the record gone. Only writes of logged-in sessions pay the extra read; requests that do not write the
 * session pay nothing, and reading a session costs nothing extra.
 */
export function guardSessionStore(store: Store, check: LoginCheck): void {
  let state = guarded.get(store);
  if (state) {
    state.checks.add(check);
    return;
  }
  state = { checks: new Set([check]) };
  guarded.set(store, state);
  const checks = state.checks;
  const originalSet = store.set.bind(store);
  store.set = function guardedSet(this: Store, sid: string, session: unknown, callback?: SetCallback): void {
    const saved = session && typeof session === 'object' ? loginSaves.get(session) : undefined;
    if (saved) {
      loginSaves.delete(session as object);
      if (saved.sid === sid && saved.content === contentOf(session)) return void process.nextTick(() => callback?.());
    }
    // The content as it goes to the store now (the session object may change while the write is under way).
    const content = session && typeof session === 'object' && freshLogins.has(session) ? contentOf(session) : undefined;
    originalSet.call(this, sid, session as never, (err?: unknown) => {
      if (err || !claimsLogin(session as SessionLike)) return callback?.(err);
      if (freshLogins.delete(session as object)) {
        if (content !== undefined) loginSaves.set(session as object, { sid, content });
        return callback?.();
      }
      void loginAlive(checks, sid, session as object).then((alive) => {
        if (alive) return callback?.();
        store.destroy(sid, () => callback?.());
      });
    });
  };
}

/**
 * False when the login the session claims is gone (its login instance's record was deleted: a logout);
 * true otherwise. A store that cannot answer counts as alive: outages end no login.
 */
async function loginAlive(checks: Set<LoginCheck>, sid: string, session: object): Promise<boolean> {
  for (const check of checks) {
    try {
      const alive = check(sid, session);
      if (alive !== undefined && !(await alive)) return false;
    } catch {
      return true;
    }
  }
  return true;
}
