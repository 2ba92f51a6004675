import type { Request, RequestHandler } from 'express';
import { OAuthError } from './errors.js';
import { renderOAuthError } from './error-handler.js';
import { stateOf } from './request-state.js';
import type { Instance } from './instance.js';
import { LoginRequiredError } from './errors.js';
import { safeReturnTo } from './return-to.js';

/** The login URL for this request, with `returnTo` set to the current path (GET) or `/`. */
export function loginRedirect(instance: Instance, req: Request): string {
  const target = req.method === 'GET' || req.method === 'HEAD' ? safeReturnTo(req.originalUrl, instance.cfg.appOrigin) : '/';
  const mount = stateOf(req)?.base ?? '';
  const base = `${mount}${instance.cfg.paths.login}`;
  return target === '/' ? base : `${base}?returnTo=${encodeURIComponent(target)}`;
}

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
    const instance = stateOf(req)?.instance;
    if (!instance) {
      return next(
        new OAuthError(
          'config_invalid',
          500,
          'requireAuth(): the oauth() middleware is not mounted before this route. Add app.use(oauth({...})) first.',
          {
            expose: false,
          },
        ),
      );
    }
    if (req.oauth.isAuthenticated) return next();
    renderOAuthError(instance, new LoginRequiredError(), req, res);
  };
}
