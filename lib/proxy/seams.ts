/**
 * The proxy's only dependency on the package's internals. Everything else under `lib/proxy/` talks to
 * this file, so a change in how `oauth()` keeps its per-request state, configuration or token source
 * is adapted here and nowhere else.
 */
import type { Request } from 'express';
import type http from 'node:http';
import type https from 'node:https';
import { createOAuthError } from '../errors.js';
import { telemetryOf, type Telemetry } from '../telemetry.js';
import { stateOf, tokensOf } from '../request-state.js';
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
}

/** The `oauth()` instance serving this request, seen through {@link OAuthSeam}; throws when `oauth()` is not mounted before. */
export function oauthSeam(req: Request, who: string): OAuthSeam {
  const state = stateOf(req);
  if (!state) {
    throw createOAuthError('config_invalid', `${who} needs app.use(oauth({...})) mounted before it.`);
  }
  const { instance } = state;
  const { cfg } = instance;
  const tokens = () => tokensOf(req, state);
  const data = instance.session(req).session.oauth;
  return {
    appOrigin: cfg.appOrigin,
    apiOrigins: cfg.apiOrigins,
    httpTimeout: cfg.httpTimeout,
    logger: cfg.logger,
    telemetry: telemetryOf(cfg),
    agents: instance.agents,
    logoutUrl: `${state.base}${cfg.paths.logout}`,
    isAuthenticated: data?.user !== undefined && typeof data.loginAt === 'number',
    user: data?.user,
    accessToken: (options) => tokens().accessToken(options),
    credentials: (options) => tokens().credentials(options),
    async tokenExpiry() {
      const loaded = await tokens().record();
      if (!loaded) return null;
      const at = loaded.record.expires_at;
      return { expiresAt: at === undefined ? undefined : new Date(at * 1000) };
    },
  };
}
