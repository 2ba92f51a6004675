/**
 * The proxy's only dependency on the package's internals. Everything else under `lib/proxy/` talks to
 * this file, so a change in how `oauth()` keeps its per-request state, configuration or token source
 * is adapted here and nowhere else.
 */
import type { Request } from 'express';
import type http from 'node:http';
import type https from 'node:https';
import { ConnectionRequiredError, LoginRequiredError, createOAuthError, type OAuthError } from '../errors.js';
import { telemetryOf, type Telemetry } from '../telemetry.js';
import { stateOf, tokensOf } from '../request-state.js';
import { isLoggedIn, namespaceOf } from '../session.js';
import type { Logger, OAuthUser } from '../types.js';
import type { AccessCredentials } from '../client.js';

/** An access token as the proxy sends it: bearer, or DPoP-bound with its key. */
export type OAuthCredentials = AccessCredentials;

/** What the proxy and the session endpoint need to know about the `oauth()` instance serving a request. */
export interface OAuthSeam {
  /** The app's origin (from `redirectUri`): the only `Origin` accepted on proxied calls. */
  appOrigin: string;
  /** Origins of `apiBaseUrl`: the only places the token may go. */
  apiOrigins: ReadonlySet<string>;
  /** Deadline of API calls (`httpTimeout`), the proxy's default. */
  httpTimeout: number;
  logger: Logger;
  /** The instance's metrics (proxied calls by status). */
  telemetry: Telemetry;
  /** The keep-alive agents shared by `req.oauthClient` (connections reused, no user state). */
  agents: { http: http.Agent; https: https.Agent };
  /** The logout route, as the browser must call it (mount path included). */
  logoutUrl: string;
  /** Whether the session completed a login (no store read). */
  isAuthenticated: boolean;
  user: OAuthUser | undefined;
  /**
   * The access token for this request, from the same per-request source as `req.oauthClient`: the store
   * is read once, a refresh runs once across requests and processes. `rejected`: the token an upstream
   * 401 refused (refresh unless another request already replaced it).
   */
  accessToken(options?: { rejected?: string }): Promise<string>;
  /** The same token with its DPoP key when it is DPoP-bound (the proxy then signs a proof per request). */
  credentials(options?: { rejected?: string }): Promise<OAuthCredentials>;
  /** When the access token expires (reads the record); `null` with no record. */
  tokenExpiry(): Promise<{ expiresAt: Date | undefined } | null>;
  /** The error for a session without this instance's login (`login_required`) or connection (`connection_required`). */
  notLoggedIn(): OAuthError;
  /** The app's connect instances and whether this session connected each (no store read). */
  connections: Array<{ provider: string; connected: boolean }>;
}

/**
 * The `oauth()` instance serving this request (the login one, or the one named `provider`), seen through
 * {@link OAuthSeam}; throws when `oauth()` is not mounted before, or no instance has that name.
 */
export function oauthSeam(req: Request, who: string, provider?: string): OAuthSeam {
  const main = stateOf(req);
  if (!main) {
    throw createOAuthError('config_invalid', `${who} needs app.use(oauth({...})) mounted before it.`);
  }
  let state = main;
  if (provider !== undefined) {
    const member = main.group?.byName.get(provider);
    const named = member && stateOf(req, member.key);
    if (!named) throw createOAuthError('config_invalid', `${who}: no oauth() instance named '${provider}' is mounted before it.`);
    state = named;
  }
  const { instance } = state;
  const { cfg } = instance;
  const tokens = () => tokensOf(req, state);
  const session = instance.session(req).session;
  const data = namespaceOf(session, cfg.sessionKey);
  const logoutInstance = main.instance;
  return {
    appOrigin: cfg.appOrigin,
    apiOrigins: cfg.apiOrigins,
    httpTimeout: cfg.httpTimeout,
    logger: cfg.logger,
    telemetry: telemetryOf(cfg),
    agents: instance.agents,
    logoutUrl: `${main.base}${logoutInstance.cfg.paths.logout ?? logoutInstance.cfg.paths.login}`,
    isAuthenticated: isLoggedIn(data),
    user: data?.user,
    accessToken: (options) => tokens().accessToken(options),
    credentials: (options) => tokens().credentials(options),
    async tokenExpiry() {
      const loaded = await tokens().record();
      if (!loaded) return null;
      const at = loaded.record.expires_at;
      return { expiresAt: at === undefined ? undefined : new Date(at * 1000) };
    },
    notLoggedIn: () =>
      cfg.role === 'connect'
        ? new ConnectionRequiredError(cfg.name, `${main.group?.base ?? state.base}${cfg.paths.login}`)
        : new LoginRequiredError(),
    connections: (main.group?.connections() ?? []).map(({ instance: c }) => ({
      provider: c.cfg.name,
      connected: isLoggedIn(namespaceOf(session, c.cfg.sessionKey)),
    })),
  };
}
