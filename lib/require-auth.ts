import type { RequestHandler } from 'express';
import { LoginRequiredError, createOAuthError } from './errors.js';
import { renderOAuthError } from './render.js';
import { stateOf } from './request-state.js';
import { isLoggedIn, namespaceOf } from './session.js';
import { lifetimeEnded } from './sessions/lifetimes.js';

/**
 * Guards a route: a request whose session has not logged in is redirected to login (pages) or answered
 * `401 {"error":"login_required"}` (JSON/XHR callers). Does not read the token store.
 *
 * @example
 * ```ts
 * app.get('/profile', requireAuth(), handler);
 * ```
 */
export function requireAuth(): RequestHandler {
  return function requireAuthMiddleware(req, res, next) {
    const state = stateOf(req);
    if (!state) {
      return next(
        createOAuthError(
          'config_invalid',
          'requireAuth(): the oauth() middleware is not mounted before this route. Add app.use(oauth({...})) first.',
        ),
      );
    }
    const instance = state.instance;
    // Read from the session express-session loaded, as req.oauth does, without building req.oauth.
    if (isLoggedIn(namespaceOf((req as { session?: object }).session, instance.cfg.sessionKey))) return next();
    const ended = lifetimeEnded(req);
    renderOAuthError(
      instance,
      ended ? new LoginRequiredError('Your session has expired. Please log in again.', ended) : new LoginRequiredError(),
      req,
      res,
    );
  };
}
