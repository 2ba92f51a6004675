import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AxiosInstance } from 'axios';
import { createOAuthClient } from './client.js';
import { resolveConfig } from './config.js';
import { LoginRequiredError, OAuthError, StoreUnavailableError } from './errors.js';
import { kBase, kInstance, renderOAuthError } from './error-handler.js';
import type { OAuthEvents } from './events.js';
import { withTimeout } from './http.js';
import { Instance } from './instance.js';
import { createCookieChecks } from './cookie-checks.js';
import { handleCallback } from './routes/callback.js';
import { handleLogin } from './routes/login.js';
import { handleLogout } from './routes/logout.js';
import type { LoadedRecord } from './tokens.js';
import type { OAuthOptions, OAuthRequestContext, OAuthUser, TokenInfo } from './types.js';

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

/** Per-request token access: reads the store at most once per request unless a refresh replaces the record. */
class RequestTokens {
  private loaded: Promise<LoadedRecord | null> | undefined;

  constructor(
    private readonly instance: Instance,
    private readonly req: Request,
    private readonly sid: string,
  ) {}

  private endLogin(): void {
    const data = (this.req as Request & { session?: { oauth?: { user?: OAuthUser; loginAt?: number } } }).session?.oauth;
    if (data) {
      delete data.user;
      delete data.loginAt;
    }
  }

  async record(): Promise<LoadedRecord | null> {
    this.loaded ??= this.instance.tokens.readCached(this.sid);
    return this.loaded;
  }

  async accessToken(options: { rejected?: string } = {}): Promise<string> {
    try {
      const current = await this.record();
      if (!current) throw new LoginRequiredError();
      const fresh = await this.instance.tokens.ensureFresh(this.instance.server.loaded, this.sid, current, options);
      if (fresh !== current) this.loaded = Promise.resolve(fresh);
      return fresh.record.access_token;
    } catch (err) {
      if (err instanceof LoginRequiredError) {
        this.loaded = Promise.resolve(null);
        this.endLogin();
      }
      throw err;
    }
  }
}

function defineLazy<T>(req: Request, name: 'oauthClient' | 'oauth', make: () => T): void {
  Object.defineProperty(req, name, {
    configurable: true,
    enumerable: false,
    get() {
      const value = make();
      Object.defineProperty(req, name, { value, configurable: true, enumerable: false, writable: false });
      return value;
    },
  });
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
  const { paths } = cfg;
  const checkCookies = createCookieChecks(cfg);
  // Start discovery now; failures are retried in the background and reported through the logger.
  instance.loadProvider().catch(() => {});

  const routes: Record<string, { method: string; handler: (i: Instance, req: Request, res: Response) => Promise<void> }> = {
    [paths.login]: { method: 'GET', handler: handleLogin },
    [paths.callback]: { method: 'GET', handler: handleCallback },
    [paths.logout]: { method: 'POST', handler: handleLogout },
  };

  const middleware = function oauthMiddleware(req: Request, res: Response, next: NextFunction): void {
    const r = req as unknown as Record<symbol, unknown>;
    r[kInstance] = instance;
    r[kBase] = req.baseUrl;
    let tokens: RequestTokens | undefined;
    const requestTokens = () => {
      const sreq = instance.session(req);
      return (tokens ??= new RequestTokens(instance, req, sreq.sessionID));
    };
    defineLazy<AxiosInstance>(req, 'oauthClient', () => createOAuthClient(cfg, instance.agents, requestTokens()));
    defineLazy<OAuthRequestContext>(req, 'oauth', () => {
      const data = instance.session(req).session.oauth;
      return {
        isAuthenticated: data?.user !== undefined && typeof data.loginAt === 'number',
        user: data?.user,
        async tokenInfo(): Promise<TokenInfo | undefined> {
          const loaded = await requestTokens().record();
          if (!loaded) return undefined;
          const { expires_at, scope, refresh_token } = loaded.record;
          return { expiresAt: expires_at === undefined ? undefined : new Date(expires_at * 1000), scope, refreshable: !!refresh_token };
        },
      };
    });

    const route = routes[req.path];
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
      return renderOAuthError(instance, new OAuthError('method_not_allowed', 405, 'Method not allowed.'), req, res);
    }
    route.handler(instance, req, res).catch((err: unknown) => {
      if (err instanceof OAuthError) {
        if (err.status >= 500 && err.code !== 'store_unavailable') cfg.logger.warn(`${req.path}: ${err.message}`, { code: err.code });
        return renderOAuthError(instance, err, req, res);
      }
      cfg.logger.error(`${req.path}: unexpected error`, { error: err instanceof Error ? err.name : typeof err });
      next(err);
    });
  } as OAuthMiddleware;

  const ping = () =>
    instance.cfg.tokenStore.ping
      ? withTimeout(instance.cfg.tokenStore.ping(), cfg.storeTimeout, () => new StoreUnavailableError('Token store ping timed out.'))
      : Promise.resolve();

  Object.defineProperties(middleware, {
    events: { value: instance.events, enumerable: true },
    ready: {
      value: async () => {
        await instance.whenProviderLoaded();
        // Wait for the token store too (Redis may still be starting), retrying with a bounded backoff.
        for (let delay = 100; ; delay = Math.min(delay * 2, 5000)) {
          try {
            return await ping();
          } catch {
            cfg.logger.warn(`token store not answering; retrying in ${delay} ms`);
            await new Promise((r) => setTimeout(r, delay));
          }
        }
      },
    },
    isReady: {
      value: async () => {
        if (!instance.server.loaded) {
          await instance.loadProvider().catch(() => {});
          if (!instance.server.loaded) return false;
        }
        return ping().then(
          () => true,
          () => false,
        );
      },
    },
    readinessHandler: {
      value: (): RequestHandler =>
        function oauthReadiness(_req, res) {
          void middleware.isReady().then((ok) => {
            res.setHeader('Cache-Control', 'no-store');
            if (!ok) res.setHeader('Retry-After', '5');
            res.status(ok ? 200 : 503).json({ ready: ok });
          });
        },
    },
    close: {
      value: () => {
        instance.server.stop();
        instance.agents.http.destroy();
        instance.agents.https.destroy();
      },
    },
  });
  return middleware;
}
