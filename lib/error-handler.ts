import type { ErrorRequestHandler } from 'express';
import { OAuthError } from './errors.js';
import { renderOAuthError } from './render.js';
import { stateOf } from './request-state.js';

/**
 * Error handler for the app's own routes: renders {@link OAuthError}s raised by `req.oauthClient`
 * (login required, store unavailable, ...) the same way the `/oauth/*` routes do, and passes every
 * other error on. Mount it after your routes.
 *
 * @example
 * ```ts
 * app.get('/api/me', requireAuth(), async (req, res) => res.json((await req.oauthClient.get('/me')).data));
 * app.use(oauthErrorHandler());
 * ```
 */
export function oauthErrorHandler(): ErrorRequestHandler {
  return function oauthErrorHandlerMiddleware(err, req, res, next) {
    if (!(err instanceof OAuthError)) return next(err);
    const instance = stateOf(req)?.instance;
    if (err.status >= 500) instance?.cfg.logger.warn(`${req.method} ${req.path}: ${err.message}`, { code: err.code });
    renderOAuthError(instance, err, req, res);
  };
}
