import type { RequestHandler } from 'express';
import { requireGroup } from './app-group.js';
import { ConfigError, ConnectionRequiredError } from './errors.js';
import { renderOAuthError } from './render.js';
import { stateOf } from './request-state.js';
import { isLoggedIn, namespaceOf } from './session.js';

/**
 * Guards a route that needs the session to have connected `provider` (a `role: 'connect'` instance):
 * otherwise JSON/XHR callers get `401 {"error":"connection_required","provider":"<name>"}` and pages are
 * redirected to that provider's login with `returnTo`. Does not read the token store (a connection whose
 * tokens are gone shows up as `connection_required` on the first call of `req.oauthClients.<name>`).
 *
 * @example
 * ```ts
 * app.get('/repos', requireAuth(), requireConnection('github'), async (req, res) =>
 *   res.json((await req.oauthClients.github.get('/user/repos')).data));
 * ```
 */
export function requireConnection(provider: string): RequestHandler {
  if (typeof provider !== 'string' || provider.length === 0)
    throw new ConfigError("requireConnection(): pass the name of a connect instance, e.g. requireConnection('github').");
  const who = `requireConnection('${provider}')`;
  return function requireConnectionMiddleware(req, res, next) {
    const state = stateOf(req);
    let member;
    try {
      member = requireGroup(req, state?.group, who).member(provider, who);
    } catch (err) {
      return next(err);
    }
    const { instance } = member;
    if (isLoggedIn(namespaceOf(instance.session(req).session, instance.cfg.sessionKey))) return next();
    const loginUrl = `${state!.group!.base}${instance.cfg.paths.login}`;
    renderOAuthError(instance, new ConnectionRequiredError(instance.cfg.name, loginUrl), req, res);
  };
}
