import type { Request, Response } from 'express';
import { createOAuthError } from '../errors.js';
import type { Instance } from '../instance.js';
import { rawQueryParams } from '../query.js';
import { safeReturnTo } from '../return-to.js';
import { destroySession, namespaceOf } from '../session.js';
import { stateOf } from '../request-state.js';
import { endConnection } from './end-connection.js';
import { sessionTag } from '../tokens.js';
import { wantsJson } from '../wants-json.js';

/**
 * Cross-site request forgery (RFC 9700 §4.7): a state-changing request must come from our own pages. Browsers send `Sec-Fetch-Site` and
 * `Origin` on every POST; a request with neither must carry a custom header (which a cross-site form
 * cannot set without a CORS preflight).
 */
export function isSameOrigin(req: Request, appOrigin: string): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string') return site === 'same-origin';
  const origin = req.headers.origin;
  if (typeof origin === 'string') return origin === appOrigin;
  return typeof req.headers['x-requested-with'] === 'string';
}

/**
 * `POST {logout}`: revokes the tokens at the provider (best effort, short deadline), deletes the record,
 * ends every connection of the session (each other instance of the app: revoked, record deleted),
 * destroys the session, clears the cookie, then redirects to the provider's end-session endpoint (when it
 * has one) or to a validated `returnTo`; XHR callers get 204 with that target (without the ID token) in `Logout-Location`.
 */
export async function handleLogout(instance: Instance, req: Request, res: Response): Promise<void> {
  const { cfg, server, tokens, events } = instance;
  if (!isSameOrigin(req, cfg.appOrigin)) {
    throw createOAuthError('cross_site_request', 'Cross-site logout refused.');
  }
  const sreq = instance.session(req);
  const sid = sreq.sessionID;
  const sub = namespaceOf(sreq.session, cfg.sessionKey)?.user?.sub;
  const loaded = await tokens.read(sid);
  const others = stateOf(req)?.group?.others(instance) ?? [];
  const [revoked] = await Promise.all([
    loaded ? server.revokeQuietly(loaded.record.refresh_token, loaded.record.access_token) : false,
    ...others.map((other) => endConnection(other, sid, sub)),
  ]);
  await tokens.remove(sid);
  await destroySession(sreq, cfg.storeTimeout);
  res.clearCookie(cfg.sessionCookieName, { path: '/', httpOnly: true, sameSite: 'lax', secure: req.secure });
  events.emit('logout', { provider: cfg.name, session: sessionTag(sid), sub, revoked });

  const params = rawQueryParams(req, 4096);
  const returnTo = params?.getAll('returnTo').length === 1 ? safeReturnTo(params.get('returnTo'), cfg.appOrigin) : undefined;
  // Unset, the provider sends the user back to the app's origin (register `<origin>/` there).
  const postLogout = cfg.postLogoutRedirectUri ?? `${cfg.appOrigin}/`;
  const fallback = returnTo ?? cfg.postLogoutRedirectUri ?? '/';
  if (wantsJson(req)) {
    // A script reads this header: never the ID token (the end-session URL carries `client_id` instead).
    res.setHeader('Logout-Location', server.endSessionUrl(undefined, postLogout)?.href ?? fallback);
    return void res.status(204).end();
  }
  const endSession = server.endSessionUrl(loaded?.record.id_token, postLogout);
  res.redirect(302, endSession?.href ?? fallback);
}
