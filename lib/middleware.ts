import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Store } from 'express-session';
import { resolveConfig } from './config.js';
import { OAuthError, createOAuthError } from './errors.js';
import { renderOAuthError } from './render.js';
import { createStateKey, installRequestAccessors, setState } from './request-state.js';
import type { OAuthEvents } from './events.js';
import { createReadiness } from './readiness.js';
import { Instance } from './instance.js';
import { createCookieChecks } from './cookie-checks.js';
import { guardSessionStore } from './session-guard.js';
import { mountRoutes } from './routes/index.js';
import { groupFor, type AppGroup } from './app-group.js';
import { installProviderAccessors } from './provider-accessors.js';
import { noteProcessLogger } from './session-secret.js';
import type { OAuthOptions } from './types.js';

/** The middleware returned by {@link oauth}, with its lifecycle helpers. */
export interface OAuthMiddleware extends RequestHandler {
  /**
   * Resolves once the provider metadata is loaded (discovery) and the token store answers.
   * Rejects on a configuration error found then (e.g. discovery returned another issuer).
   * Optional: requests that arrive earlier get 503 until it is done.
   */
  ready(): Promise<void>;
  /** Same checks as `ready()`, bounded, for readiness probes: resolves true or false, never throws. */
  isReady(): Promise<boolean>;
  /**
   * A route handler for load-balancer readiness probes: `200 {"ready":true}` or `503 {"ready":false}`.
   *
   * @example
   * ```ts
   * app.get('/healthz/ready', auth.readinessHandler());
   * ```
   */
  readinessHandler(): RequestHandler;
  /** Events for logs and metrics: `login`, `refresh`, `refresh_failed`, `logout`, `login_failed`. */
  readonly events: OAuthEvents;
  /** Stops background work (discovery retries) and closes idle keep-alive sockets. */
  close(): void;
}

/**
 * Makes an Express app a confidential OAuth 2.0 / OpenID Connect client. Mounts `GET /oauth/login`,
 * `GET /oauth/callback` and `POST /oauth/logout`, and gives every request `req.oauthClient` (an axios
 * instance holding the user's token for the configured API only) and `req.oauth` (login state).
 * Mount it after express-session. Options are validated here: a mistake throws at startup.
 *
 * @example
 * ```ts
 * const auth = oauth({
 *   issuer: 'https://accounts.example.com',
 *   clientId: process.env.CLIENT_ID!, clientSecret: process.env.CLIENT_SECRET!,
 *   redirectUri: 'http://localhost:3000/oauth/callback',
 *   scope: ['openid', 'email', 'offline_access'],
 *   apiBaseUrl: 'https://api.example.com',
 *   tokenStore: new RedisTokenStore({ client: redis }),
 *   encryptionKey: process.env.TOKEN_KEY!,
 * });
 * app.use(auth);
 * app.get('/profile', requireAuth(), async (req, res) => res.json((await req.oauthClient.get('/v1/me')).data));
 * app.use(oauthErrorHandler());
 * ```
 */
export function oauth(options: OAuthOptions): OAuthMiddleware {
  const cfg = resolveConfig(options);
  const instance = new Instance(cfg);
  noteProcessLogger(cfg.logger);
  const checkCookies = createCookieChecks(cfg);
  // Start discovery now; failures are retried in the background and reported through the logger.
  instance.server.load().catch(() => {});

  const routes = mountRoutes(cfg.paths);
  const stateKey = createStateKey();

  // Logout is final: the app's session store refuses to bring back a session whose login ended (see
  // guardSessionStore). Installed on the first request that shows the store, checked by identity after.
  let guardedStore: unknown;
  const loginAlive = (sid: string) => instance.tokens.exists(sid);

  let accessorsOn: object | undefined;
  // The app's other instances at this mount path (several providers), found like the accessors: on the
  // first request, an identity check after. A conflict (same name, two login instances, a shared path) is
  // a configuration error every request of that app gets.
  let group: AppGroup | undefined;
  let groupBase: string | undefined;
  let groupError: Error | undefined;

  const middleware = function oauthMiddleware(req: Request, res: Response, next: NextFunction): void {
    // The accessors live on the app's request prototype (found on the first request; an identity check after).
    const proto = (req.app as unknown as { request?: object } | undefined)?.request ?? (Object.getPrototypeOf(req) as object);
    if (proto !== accessorsOn || req.baseUrl !== groupBase) {
      accessorsOn = proto;
      groupBase = req.baseUrl;
      installRequestAccessors(proto);
      installProviderAccessors(proto);
      group = groupFor(proto, req.baseUrl);
      try {
        group.add({ instance, key: stateKey });
        groupError = undefined;
      } catch (err) {
        groupError = err as Error;
        cfg.logger.error((err as Error).message);
      }
    }
    if (groupError) return next(groupError);
    setState(req, stateKey, instance, group);
    const sessionStore = (req as { sessionStore?: Store }).sessionStore;
    if (sessionStore !== guardedStore && sessionStore) {
      guardedStore = sessionStore;
      guardSessionStore(sessionStore, loginAlive);
    }

    const route = routes.get(req.path);
    if (!route) {
      // Fail early and clearly when express-session is missing, not on the first login.
      if (!(req as { session?: unknown }).session) {
        try {
          instance.session(req);
        } catch (err) {
          return next(err);
        }
      }
      return next();
    }
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    checkCookies(req);
    // GET only (no HEAD): a HEAD must not redeem a code or create a login transaction.
    if (req.method !== route.method) {
      res.setHeader('Allow', route.method);
      return renderOAuthError(instance, createOAuthError('method_not_allowed', 'Method not allowed.'), req, res);
    }
    route.handler(instance, req, res).catch((err: unknown) => {
      if (err instanceof OAuthError) {
        if (err.status >= 500 && err.code !== 'store_unavailable' && !route.logsOwnFailures) {
          cfg.logger.warn(`${req.path}: ${err.message}`, { code: err.code });
        }
        // A connection refused for want of a login (`requireLogin`) sends pages to the app's login
        // instance, never back to this instance's own login; at the callback it is a plain 401.
        if (err.code === 'login_required' && cfg.role === 'connect') {
          return renderOAuthError(route.name === 'login' ? group?.login?.instance : undefined, err, req, res);
        }
        return renderOAuthError(instance, err, req, res);
      }
      cfg.logger.error(`${req.path}: unexpected error`, { error: err instanceof Error ? err.name : typeof err });
      next(err);
    });
  };

  return Object.assign(middleware, {
    ...createReadiness(instance.server, instance.tokens, cfg.logger),
    events: instance.events,
    close: () => instance.close(),
  });
}
