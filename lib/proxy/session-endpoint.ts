import type { RequestHandler } from 'express';
import { OAuthError, createOAuthError } from '../errors.js';
import { isOwnScript } from './csrf.js';
import { sendProxyError } from './respond.js';
import { oauthSeam } from './seams.js';
import type { OAuthUser } from '../types.js';

/** Options of {@link sessionEndpoint}. */
export interface SessionEndpointOptions {
  /** Anti-CSRF header the call must carry (as for {@link oauthProxy}). Default `X-CSRF`. */
  csrfHeader?: string;
  /** Its exact value. Default `1`. */
  csrfValue?: string;
}

/** What the session endpoint answers: the login state a single-page app renders. Never a token. */
export interface SessionInfo {
  isAuthenticated: boolean;
  /** Identity claims kept at login (`userClaims`), or `null`. */
  user: OAuthUser | null;
  /** When the access token expires (ISO 8601), or `null` (unknown or not logged in). */
  expiresAt: string | null;
  /** The app's connect instances (`role: 'connect'`) and whether this session connected each. */
  connections: Array<{ provider: string; connected: boolean }>;
  /** Where to `POST` (with the anti-CSRF header) to log out. */
  logoutUrl: string;
}

/**
 * `GET` handler answering a single-page app's "who am I" question (Duende BFF's `/bff/user`):
 * `{ isAuthenticated, user, expiresAt, connections, logoutUrl }` with `Cache-Control: no-store`.
 * Requires the anti-CSRF header; reads the token record once to report its expiry (a session whose
 * record is gone reports `isAuthenticated: false`). Mount it after `oauth()`, at a path of your choice.
 *
 * @example
 * ```ts
 * app.get('/oauth/session', sessionEndpoint());
 * // browser: await (await fetch('/oauth/session', { headers: { 'X-CSRF': '1' } })).json()
 * ```
 */
export function sessionEndpoint(options: SessionEndpointOptions = {}): RequestHandler {
  const header = (options.csrfHeader ?? 'x-csrf').toLowerCase();
  const value = options.csrfValue ?? '1';
  return function oauthSessionEndpoint(req, res, next) {
    let seam;
    try {
      seam = oauthSeam(req, 'sessionEndpoint');
    } catch (err) {
      return next(err);
    }
    res.setHeader('Cache-Control', 'no-store');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendProxyError(res, createOAuthError('method_not_allowed', 'Method not allowed.'), { Allow: 'GET, HEAD' });
    }
    if (!isOwnScript(req, seam.appOrigin, header, value)) {
      return sendProxyError(res, createOAuthError('cross_site_request', 'Cross-site session read refused.'));
    }
    const base: SessionInfo = { isAuthenticated: false, user: null, expiresAt: null, connections: seam.connections, logoutUrl: seam.logoutUrl };
    if (!seam.isAuthenticated) return void res.json(base);
    seam.tokenExpiry().then(
      (expiry) => {
        res.setHeader('Cache-Control', 'no-store');
        if (!expiry) return void res.json(base);
        res.json({ ...base, isAuthenticated: true, user: seam.user ?? null, expiresAt: expiry.expiresAt?.toISOString() ?? null });
      },
      (err: unknown) => (err instanceof OAuthError ? sendProxyError(res, err) : next(err)),
    );
  };
}
