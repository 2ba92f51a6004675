import type { Request } from 'express';
import session, { type Session, type SessionData, type Store } from 'express-session';
import { StoreUnavailableError, createOAuthError } from './errors.js';
import { withTimeout } from './util.js';
import type { OAuthUser } from './types.js';

/** A pending login, kept server-side in the session under a hash of its `state`. */
export interface PendingLogin {
  /** PKCE code verifier. */
  verifier: string;
  /** OpenID Connect nonce, when `openid` is in scope. */
  nonce?: string;
  /** The issuer the login was sent to (RFC 9207 mix-up defence). */
  issuer: string;
  /** Validated post-login path. */
  returnTo: string;
  /** Epoch ms. */
  createdAt: number;
  /** Scopes asked for on top of the configured `scope` (incremental authorization), when any. */
  extraScopes?: string[];
  /**
   * Set when the browser said the login was started from another site (`Sec-Fetch-Site: cross-site`).
   * Such a login may only push out other cross-site logins, never one the user started on this app.
   */
  crossSite?: boolean;
}

/** What this package keeps in express-session's record: never a token. */
export interface OAuthSessionData {
  /** Pending logins by SHA-256 of their `state`, at most {@link MAX_PENDING}. */
  tx?: Record<string, PendingLogin>;
  /** Identity claims of the logged-in user. */
  user?: OAuthUser;
  /** Epoch ms of the login (or, for a connect instance, of the connection). */
  loginAt?: number;
  /** Scopes granted on top of the configured `scope` by incremental authorization (`allowedScopes`). */
  extraScopes?: string[];
  /** Epoch ms the session was last seen, moved in coarse steps (only with `idleTimeout`). */
  seenAt?: number;
  /** Hashes the session is filed under in the session index (see `lib/sessions/session-index.ts`). */
  idx?: { sub?: string; sid?: string };
}

declare module 'express-session' {
  interface SessionData {
    /** The unnamed instance's data. */
    oauth?: OAuthSessionData;
    /** A named instance's data (`oauth:<name>`). */
    [namespace: `oauth:${string}`]: OAuthSessionData | undefined;
  }
}

/** Whether a session field belongs to this package (`oauth`, or a named instance's `oauth:<name>`). */
export const isOAuthField = (key: string) => key === 'oauth' || key.startsWith('oauth:');

type Namespaces = Record<string, OAuthSessionData | undefined>;

/** An instance's data in a session (`cfg.sessionKey`), or undefined. */
export function namespaceOf(session: object | undefined, sessionKey: string): OAuthSessionData | undefined {
  const data = (session as Namespaces | undefined)?.[sessionKey];
  return data && typeof data === 'object' ? data : undefined;
}

/** Sets (or, with `undefined`, deletes) an instance's data in a session. */
export function setNamespace(session: object, sessionKey: string, data: OAuthSessionData | undefined): void {
  if (data === undefined) delete (session as Namespaces)[sessionKey];
  else (session as Namespaces)[sessionKey] = data;
}

/** Whether the data says a login (or connection) completed: identity kept and a time. */
export const isLoggedIn = (data: OAuthSessionData | undefined) => data?.user !== undefined && typeof data.loginAt === 'number';

export const MAX_PENDING = 5;
export const TX_TTL_MS = 10 * 60 * 1000;

/**
 * Adds a pending login under `key`, keeping at most {@link MAX_PENDING}. A login started from another
 * site (a page forcing top-level GETs of the login route) can only evict other cross-site logins, so it
 * cannot cancel a login the user is completing (RFC 9700 §4.4 login CSRF is what state prevents; this
 * stops its denial-of-service twin). Returns false, and adds nothing, when the new login is cross-site and
 * every slot holds one the user started here.
 */
export function addPending(data: OAuthSessionData, key: string, login: PendingLogin, now = Date.now()): boolean {
  const live = livePending(data, now);
  const entries = Object.entries(live);
  if (entries.length >= MAX_PENDING) {
    // Oldest first; cross-site entries go before ones the user started here.
    const victims = entries
      .filter(([, tx]) => !login.crossSite || tx.crossSite === true)
      .sort(([, a], [, b]) => Number(b.crossSite === true) - Number(a.crossSite === true) || a.createdAt - b.createdAt);
    const excess = entries.length - MAX_PENDING + 1;
    if (victims.length < excess) return false;
    for (const [k] of victims.slice(0, excess)) delete live[k];
  }
  live[key] = login;
  data.tx = live;
  return true;
}

/**
 * The session cookie is `SameSite=Lax` (RFC 6265bis §8.8; the provider's redirect back is a cross-site top-level GET). When the app left `sameSite` unset, the sessions this
 * package creates or logs in get `lax`; an explicit choice of the app is never overridden (`strict` is
 * reported at the first request: it breaks the provider's redirect back).
 */
export function defaultSameSite(req: SessionRequest): void {
  const cookie = req.session.cookie;
  if (cookie.sameSite === undefined) cookie.sameSite = 'lax';
}

/** The app's own fields of a session (anything but the cookie and this package's namespace). */
export function hasAppFields(session: object): boolean {
  for (const k of Object.keys(session)) if (k !== 'cookie' && !isOAuthField(k)) return true;
  return false;
}

type SessionRequest = Request & { session: Session & Partial<SessionData>; sessionID: string };

/** express-session must run before us; anything else is a setup mistake reported clearly. */
export function requireSession(req: Request): SessionRequest {
  const r = req as Partial<SessionRequest>;
  if (!r.session || typeof r.session.save !== 'function' || typeof r.session.regenerate !== 'function') {
    throw createOAuthError(
      'session_missing',
      'express-oauth-client: req.session is missing. Mount express-session (app.use(session({...}))) before app.use(oauth({...})).',
    );
  }
  return req as SessionRequest;
}

/** Pending logins still valid now; expired ones are dropped. */
export function livePending(data: OAuthSessionData | undefined, now = Date.now()): Record<string, PendingLogin> {
  const out: Record<string, PendingLogin> = {};
  for (const [k, tx] of Object.entries(data?.tx ?? {})) {
    if (tx && typeof tx.createdAt === 'number' && now - tx.createdAt < TX_TTL_MS && now >= tx.createdAt - 60_000) out[k] = tx;
  }
  return out;
}

type SessionOp = 'save' | 'regenerate' | 'destroy' | 'reload';

/** A callback-style session store call as a promise, bounded by `timeoutMs`; any failure is a `StoreUnavailableError`. */
function bounded(op: SessionOp, timeoutMs: number, start: (done: (err?: unknown) => void) => void): Promise<void> {
  const work = new Promise<void>((resolve, reject) => {
    start((err?: unknown) => (err ? reject(new StoreUnavailableError(`Session ${op} failed.`, err)) : resolve()));
  });
  return withTimeout(work, timeoutMs, () => new StoreUnavailableError(`Session ${op} timed out.`));
}

function call(req: SessionRequest, op: SessionOp, timeoutMs: number): Promise<void> {
  return bounded(op, timeoutMs, (done) => {
    if (op === 'save') req.session.save(done);
    else if (op === 'regenerate') req.session.regenerate(done);
    else if (op === 'reload') req.session.reload(done);
    else req.session.destroy(done);
  });
}

/** Saves the session and waits for the store, bounded by `timeoutMs`. */
export const saveSession = (req: SessionRequest, timeoutMs: number) => call(req, 'save', timeoutMs);
/** Regenerates the session id (the old record is destroyed), bounded by `timeoutMs`. */
export const regenerateSession = (req: SessionRequest, timeoutMs: number) => call(req, 'regenerate', timeoutMs);
/** express-session's own `Store.prototype.regenerate` (destroy the old session, then generate a new one). */
const defaultRegenerate: unknown = (session as { Store?: { prototype?: { regenerate?: unknown } } }).Store?.prototype?.regenerate;

/**
 * A new session id, as `req.session.regenerate()` makes it, with the old session's destroy left running:
 * the new (empty) session is in place when this resolves, and `destroyed` settles once the old session is
 * gone (bounded by `timeoutMs`). The caller writes what the new session needs meanwhile and awaits
 * `destroyed` before it saves the new session, so the old id is dead before the new one is live, one
 * store round trip sooner than with `regenerate()`. A store with a `regenerate` of its own (or another
 * copy of express-session) gets `regenerate()` itself, awaited.
 */
export async function regenerateSessionAside(req: SessionRequest, timeoutMs: number): Promise<{ destroyed: Promise<void> }> {
  const store = (req as { sessionStore?: Store & { generate?: (req: Request) => void } }).sessionStore;
  if (!store || store.regenerate !== defaultRegenerate || typeof store.generate !== 'function' || typeof store.destroy !== 'function') {
    await regenerateSession(req, timeoutMs);
    return { destroyed: Promise.resolve() };
  }
  const oldSid = req.sessionID;
  const destroyed = bounded('regenerate', timeoutMs, (done) => store.destroy(oldSid, done));
  store.generate(req);
  // Awaited by the caller; a failure before it gets there must not become an unhandled rejection.
  destroyed.catch(() => {});
  return { destroyed };
}

/** Re-reads the session from the store (what other requests wrote meanwhile), bounded by `timeoutMs`. */
export const reloadSession = (req: SessionRequest, timeoutMs: number) => call(req, 'reload', timeoutMs);
/** Destroys the session, bounded by `timeoutMs`. */
export const destroySession = (req: SessionRequest, timeoutMs: number) => call(req, 'destroy', timeoutMs);

export type { SessionRequest };
