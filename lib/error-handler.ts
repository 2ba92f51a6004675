import type { ErrorRequestHandler } from 'express';
import { OAuthError } from './errors.js';
import { renderOAuthError } from './render.js';
import { stateOf } from './request-state.js';
import { missingSessionSecret } from './session-secret.js';

/**
 * Error handler for the app's own routes: renders {@link OAuthError}s raised by `req.oauthClient`
 * (login required, store unavailable, ...) the same way the `/oauth/*` routes do, and passes every
 * other error on. Mount it after your routes. It also recognises express-session mounted without `secret` (which
 * fails every request before `oauth()` runs): one log line names the fix, and the request gets a 500.
 *
 * @example
 * ```ts
 * app.get('/api/me', requireAuth(), async (req, res) => res.json((await req.oauthClient.get('/me')).data));
 * app.use(oauthErrorHandler());
 * ```
 */
export function oauthErrorHandler(): ErrorRequestHandler {
  return function oauthErrorHandlerMiddleware(err, req, res, next) {
    const instance = stateOf(req)?.instance;
    const noSecret = missingSessionSecret(err, instance?.cfg.logger);
    if (noSecret) return renderOAuthError(instance, noSecret, req, res);
    if (!(err instanceof OAuthError)) return next(err);
    if (err.status >= 500) instance?.cfg.logger.warn(`${req.method} ${req.path}: ${err.message}`, { code: err.code });
    renderOAuthError(instance, err, req, res);
  };
}
