import type { RequestHandler } from 'express';
import { LoginRequiredError, createOAuthError } from './errors.js';
import { renderOAuthError } from './render.js';
import { sessionLoggedIn, stateOf } from './request-state.js';
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
    // What req.oauth.isAuthenticated says, without building req.oauth.
    if (sessionLoggedIn(req, instance)) return next();
    const ended = lifetimeEnded(req);
    renderOAuthError(
      instance,
      ended ? new LoginRequiredError('Your session has expired. Please log in again.', ended) : new LoginRequiredError(),
      req,
      res,
    );
  };
}
