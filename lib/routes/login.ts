import type { Request, Response } from 'express';
import { sha256 } from '../crypto.js';
import { createOAuthError } from '../errors.js';
import { safeReturnTo } from '../return-to.js';
import { TX_TTL_MS, addPending, defaultSameSite, hasAppFields, saveSession, type PendingLogin } from '../session.js';
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

  const params = rawQueryParams(req, 4096);
  const returnToValues = params?.getAll('returnTo') ?? [];
  const returnTo = returnToValues.length === 1 ? safeReturnTo(returnToValues[0], cfg.appOrigin) : '/';

  const { url, state, verifier, nonce, issuer } = await server.beginLogin();
  const pending: PendingLogin = { verifier, issuer, returnTo, createdAt: Date.now() };
  if (nonce) pending.nonce = nonce;
  if (req.headers['sec-fetch-site'] === 'cross-site') pending.crossSite = true;

  const session = sreq.session;
  const original = session.oauth === undefined ? undefined : structuredClone(session.oauth);
  const cookie = session.cookie;
  const originalExpires = cookie.expires;
  const originalMaxAge = cookie.originalMaxAge;
  const originalSameSite = cookie.sameSite;
  const data = (session.oauth ??= {});
  if (!addPending(data, sha256(state), pending)) {
    if (original === undefined) delete session.oauth;
    throw createOAuthError('login_busy', 'Too many logins in progress. Please try again in a minute.');
  }
  if (data.user === undefined && !hasAppFields(session)) cookie.maxAge = TX_TTL_MS;
  defaultSameSite(sreq);
  // The transaction must be stored before the browser leaves: otherwise the callback cannot be verified.
  try {
    await saveSession(sreq, cfg.storeTimeout);
  } catch (err) {
    // Leave the session as it was, so express-session neither sets a cookie for it nor retries the write.
    if (original === undefined) delete session.oauth;
    else session.oauth = original;
    cookie.expires = originalExpires;
    cookie.originalMaxAge = originalMaxAge;
    cookie.sameSite = originalSameSite;
    throw err;
  }

  res.redirect(302, url.href);
}
