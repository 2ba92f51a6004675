import type { Request, Response } from 'express';
import { sha256 } from '../crypto.js';
import { createOAuthError } from '../errors.js';
import { stateOf } from '../request-state.js';
import { checkRequireLogin } from '../require-login.js';
import { scopeList } from '../login-url.js';
import { safeReturnTo } from '../return-to.js';
import {
  TX_TTL_MS,
  addPending,
  defaultSameSite,
  hasAppFields,
  namespaceOf,
  saveSession,
  setNamespace,
  type OAuthSessionData,
  type PendingLogin,
} from '../session.js';
import type { Instance } from '../instance.js';
import { rawQueryParams } from '../query.js';

/**
 * `GET {login}[?returnTo=/path]`: creates a login transaction (state, PKCE S256, nonce), keeps it in the
 * session under a hash of the state, waits for the session to be saved, then redirects to the provider.
 * Several tabs may have logins pending at once (see {@link addPending}).
 *
 * A session that exists only for this pending login (not logged in, no fields of the app's own) expires
 * with the transaction: its cookie's `maxAge` is the transaction lifetime until the login completes, so
 * anonymous traffic leaves no day-long sessions behind.
 */
export async function handleLogin(instance: Instance, req: Request, res: Response): Promise<void> {
  const { cfg, server } = instance;
  const sreq = instance.session(req);
  await server.ensureLoaded();

  await checkRequireLogin(instance, req, stateOf(req)?.group);

  const params = rawQueryParams(req, 4096);
  const returnToValues = params?.getAll('returnTo') ?? [];
  const returnTo = returnToValues.length === 1 ? safeReturnTo(returnToValues[0], cfg.appOrigin) : '/';

  const session = sreq.session;
  const key = cfg.sessionKey;
  // Incremental authorization: `?scope=` adds scopes of the allowlist to the ones this session was granted.
  const scopeValues = params?.getAll('scope') ?? [];
  const asked = scopeValues.length === 1 ? scopeList(scopeValues[0]) : [];
  if (scopeValues.length > 1 || asked.some((s) => !cfg.allowedScopes.has(s))) {
    throw createOAuthError('invalid_request', 'This scope cannot be requested here.');
  }
  const extraScopes = [...new Set([...(namespaceOf(session, key)?.extraScopes ?? []), ...asked])];

  const { url, state, verifier, nonce, issuer } = await server.beginLogin(extraScopes);
  const pending: PendingLogin = { verifier, issuer, returnTo, createdAt: Date.now() };
  if (nonce) pending.nonce = nonce;
  if (extraScopes.length > 0) pending.extraScopes = extraScopes;
  if (req.headers['sec-fetch-site'] === 'cross-site') pending.crossSite = true;

  const existing = namespaceOf(session, key);
  const original = existing === undefined ? undefined : structuredClone(existing);
  const cookie = session.cookie;
  const originalExpires = cookie.expires;
  const originalMaxAge = cookie.originalMaxAge;
  const originalSameSite = cookie.sameSite;
  const data: OAuthSessionData = existing ?? {};
  setNamespace(session, key, data);
  if (!addPending(data, sha256(state), pending)) {
    setNamespace(session, key, original);
    throw createOAuthError('login_busy', 'Too many logins in progress. Please try again in a minute.');
  }
  if (!loggedInAnywhere(session) && !hasAppFields(session)) cookie.maxAge = TX_TTL_MS;
  defaultSameSite(sreq);
  // The transaction must be stored before the browser leaves: otherwise the callback cannot be verified.
  try {
    await saveSession(sreq, cfg.storeTimeout);
  } catch (err) {
    // Leave the session as it was, so express-session neither sets a cookie for it nor retries the write.
    setNamespace(session, key, original);
    cookie.expires = originalExpires;
    cookie.originalMaxAge = originalMaxAge;
    cookie.sameSite = originalSameSite;
    throw err;
  }

  res.redirect(302, url.href);
}

/** Whether any instance of the session completed a login or connection (the session is then the user's own, not a transaction's). */
function loggedInAnywhere(session: object): boolean {
  for (const [k, v] of Object.entries(session)) {
    if ((k === 'oauth' || k.startsWith('oauth:')) && (v as OAuthSessionData | undefined)?.user !== undefined) return true;
  }
  return false;
}
