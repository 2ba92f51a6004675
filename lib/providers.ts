/**
 * Presets for well-known providers: endpoints, default scopes, the API their tokens are meant for, and
 * each provider's quirks. A preset returns part of the options of `oauth()`; spread it and add the rest.
 * Anything the preset sets can be overridden by a key written after the spread.
 *
 * @example
 * ```ts
 * app.use(oauth({
 *   ...providers.github({ clientId: process.env.GITHUB_CLIENT_ID!, clientSecret: process.env.GITHUB_CLIENT_SECRET! }),
 *   redirectUri: 'http://localhost:3000/oauth/callback',
 *   tokenStore: new RedisTokenStore({ client: redis }),
 *   encryptionKey: process.env.TOKEN_KEY!,
 * }));
 * ```
 */
import { ConfigError } from './errors.js';
import type { OAuthOptions } from './types.js';

/** What every preset returns: the provider's part of {@link OAuthOptions}, with the client's credentials. */
export type ProviderPreset = Pick<OAuthOptions, 'clientId' | 'clientSecret' | 'apiBaseUrl'> &
  Partial<
    Pick<
      OAuthOptions,
      | 'issuer'
      | 'authorizationEndpoint'
      | 'tokenEndpoint'
      | 'revocationEndpoint'
      | 'userinfoEndpoint'
      | 'jwksUri'
      | 'scope'
      | 'authorizationParams'
      | 'tokenEndpointAuthMethod'
    >
  >;

/** Options every preset takes. */
export interface PresetOptions {
  /** Client identifier registered at the provider. */
  clientId: string;
  /** Client secret registered at the provider (for Nylas: the application's API key). */
  clientSecret: string;
  /** Scopes to request instead of the preset's defaults. */
  scope?: string | string[];
  /** Extra authorization request parameters, merged over the preset's. */
  authorizationParams?: Record<string, string>;
  /** Base URL(s) of the API that receives the user's token, instead of the preset's default. */
  apiBaseUrl?: string | string[];
}

/** Options of {@link providers.github}. */
export interface GitHubOptions extends PresetOptions {
  /** GitHub Enterprise Server base URL (e.g. `https://github.example.com`). Default: github.com. */
  baseUrl?: string;
}

/** Options of {@link providers.google}. */
export type GoogleOptions = PresetOptions;

/** Options of {@link providers.microsoft}. */
export interface MicrosoftOptions extends PresetOptions {
  /**
   * The directory (tenant) ID, a GUID from Microsoft Entra ID > Overview; or `common`, `organizations`
   * or `consumers` for multi-tenant apps (see {@link providers.microsoft} for what changes then).
   */
  tenant: string;
  /** Cloud instance, for national clouds (e.g. `https://login.microsoftonline.us`). Default `https://login.microsoftonline.com`. */
  cloudInstance?: string;
}

/** Options of {@link providers.gitlab}. */
export interface GitLabOptions extends PresetOptions {
  /** Base URL of a self-managed GitLab instance (e.g. `https://gitlab.example.com`). Default `https://gitlab.com`. */
  baseUrl?: string;
}

/** Options of {@link providers.nylas}. */
export interface NylasOptions extends PresetOptions {
  /** Data-residency region of the Nylas application. Default `us`. */
  region?: 'us' | 'eu';
  /** API base URL instead of the region's (`https://api.us.nylas.com` or `https://api.eu.nylas.com`). */
  apiUri?: string;
  /** Connector to send the user to (`google`, `microsoft`, `imap`, ...), skipping Nylas's provider picker. */
  provider?: string;
}

const fail = (message: string): never => {
  throw new ConfigError(`providers.${message}`);
};

/** A base URL option without a trailing slash; the package validates scheme and host when `oauth()` starts. */
function baseUrl(preset: string, name: string, value: string | undefined, fallback: string): string {
  if (value === undefined) return fallback;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail(`${preset}(): \`${name}\` must be an absolute URL (got ${JSON.stringify(String(value).slice(0, 200))}).`);
  }
  if (url.search || url.hash || url.username || url.password)
    fail(`${preset}(): \`${name}\` must be a plain base URL without query, fragment or credentials.`);
  return url.href.replace(/\/+$/, '');
}

function credentials(preset: string, opts: PresetOptions | undefined): Pick<ProviderPreset, 'clientId' | 'clientSecret'> {
  if (!opts || typeof opts !== 'object') return fail(`${preset}() expects an options object with \`clientId\` and \`clientSecret\`.`);
  // Presence and type are checked by oauth() with its usual messages; here only the shape of the call.
  return { clientId: opts.clientId, clientSecret: opts.clientSecret };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MULTI_TENANT = new Set(['common', 'organizations', 'consumers']);

/**
 * Provider presets. Each returns a {@link ProviderPreset} to spread into `oauth()`.
 */
export const providers = {
  /**
   * GitHub OAuth apps and GitHub Apps (user access tokens). Plain OAuth 2.0, not OpenID Connect: there is
   * no ID token, so `req.oauth.user` is empty; ask the API (`GET /user`) who the user is.
   *
   * - Endpoints `https://github.com/login/oauth/authorize` and `.../access_token`; client credentials are
   *   sent in the request body, as GitHub documents.
   * - GitHub's token endpoint answers form-encoded unless the request has `Accept: application/json`,
   *   which this package always sends. Its `scope` is comma-separated.
   * - No refresh token and no expiry for OAuth apps, or for GitHub Apps with "user-to-server token
   *   expiration" turned off; with it on, tokens last 8 hours and come with a refresh token.
   * - No RFC 7009 revocation endpoint (GitHub's is `DELETE /applications/{client_id}/token`), so logout
   *   ends the local session only.
   *
   * Defaults: scope `read:user user:email`, API `https://api.github.com`.
   *
   * Docs: https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps,
   * https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens
   *
   * @example
   * ```ts
   * oauth({ ...providers.github({ clientId, clientSecret }), redirectUri, tokenStore, encryptionKey });
   * // then: (await req.oauthClient.get('/user')).data.login
   * ```
   */
  github(opts: GitHubOptions): ProviderPreset {
    const creds = credentials('github', opts);
    const web = baseUrl('github', 'baseUrl', opts.baseUrl, 'https://github.com');
    const api = opts.baseUrl === undefined ? 'https://api.github.com' : `${web}/api/v3`;
    return {
      ...creds,
      authorizationEndpoint: `${web}/login/oauth/authorize`,
      tokenEndpoint: `${web}/login/oauth/access_token`,
      tokenEndpointAuthMethod: 'client_secret_post',
      scope: opts.scope ?? ['read:user', 'user:email'],
      ...(opts.authorizationParams ? { authorizationParams: { ...opts.authorizationParams } } : {}),
      apiBaseUrl: opts.apiBaseUrl ?? api,
    };
  },

  /**
   * Google (OpenID Connect, discovered from `https://accounts.google.com`). Google issues a refresh
   * token only when asked with `access_type=offline`, and only on the first consent unless
   * `prompt=consent`: the preset sends both, so every login gets one.
   *
   * Defaults: scope `openid email profile`, API `https://www.googleapis.com` (e.g. `GET /oauth2/v3/userinfo`).
   * Add the scopes of the Google APIs you call, and their origins to `apiBaseUrl`.
   *
   * Docs: https://developers.google.com/identity/protocols/oauth2/web-server,
   * https://developers.google.com/identity/openid-connect/openid-connect
   */
  google(opts: GoogleOptions): ProviderPreset {
    const creds = credentials('google', opts);
    return {
      ...creds,
      issuer: 'https://accounts.google.com',
      scope: opts.scope ?? ['openid', 'email', 'profile'],
      authorizationParams: { access_type: 'offline', prompt: 'consent', ...opts.authorizationParams },
      apiBaseUrl: opts.apiBaseUrl ?? 'https://www.googleapis.com',
    };
  },

  /**
   * Microsoft identity platform (Entra ID, v2.0 endpoints), for the Microsoft Graph API.
   *
   * - With a tenant ID (GUID): OpenID Connect discovered from
   *   `https://login.microsoftonline.com/{tenant}/v2.0`, whose ID tokens carry exactly that issuer.
   *   Default scope `openid profile email offline_access User.Read`.
   * - With `common`, `organizations` or `consumers`: each user's ID token names their own tenant as
   *   issuer, which cannot be checked against one configured issuer. The preset then uses the
   *   multi-tenant endpoints as plain OAuth 2.0 without `openid` (default scope `offline_access User.Read`):
   *   ask Graph (`GET /me`) who the user is.
   * - A domain name (`contoso.onmicrosoft.com`) is refused: its metadata names the GUID issuer, so
   *   discovery would not match. Use the tenant ID.
   * - `offline_access` is what makes Microsoft return a refresh token. Client credentials go in the
   *   request body, as Microsoft documents.
   *
   * Default API: `https://graph.microsoft.com/v1.0`.
   *
   * Docs: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow,
   * https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc,
   * https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference
   */
  microsoft(opts: MicrosoftOptions): ProviderPreset {
    const creds = credentials('microsoft', opts);
    const tenant = typeof opts.tenant === 'string' ? opts.tenant.trim() : '';
    const cloud = baseUrl('microsoft', 'cloudInstance', opts.cloudInstance, 'https://login.microsoftonline.com');
    const common = {
      ...creds,
      tokenEndpointAuthMethod: 'client_secret_post' as const,
      ...(opts.authorizationParams ? { authorizationParams: { ...opts.authorizationParams } } : {}),
      apiBaseUrl: opts.apiBaseUrl ?? 'https://graph.microsoft.com/v1.0',
    };
    if (MULTI_TENANT.has(tenant.toLowerCase())) {
      const scope = opts.scope ?? ['offline_access', 'User.Read'];
      const list = typeof scope === 'string' ? scope.split(' ') : scope;
      if (list.includes('openid')) {
        fail(
          `microsoft(): \`openid\` cannot be used with tenant "${tenant}": ID tokens of multi-tenant logins name each user's tenant as issuer. Use your tenant ID (a GUID) for OpenID Connect, or drop \`openid\` and ask Graph (GET /me) who the user is.`,
        );
      }
      const base = `${cloud}/${tenant.toLowerCase()}/oauth2/v2.0`;
      return { ...common, authorizationEndpoint: `${base}/authorize`, tokenEndpoint: `${base}/token`, scope };
    }
    if (!GUID.test(tenant)) {
      if (/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(tenant)) {
        fail(
          `microsoft(): \`tenant\` ${JSON.stringify(tenant)} is a domain name, whose metadata names the tenant ID as issuer (so discovery would not match): use the tenant ID instead, a GUID (Microsoft Entra ID > Overview).`,
        );
      }
      fail(
        `microsoft(): \`tenant\` must be the directory (tenant) ID, a GUID (Microsoft Entra ID > Overview), or "common", "organizations" or "consumers" (got ${JSON.stringify(String(opts.tenant).slice(0, 100))}).`,
      );
    }
    return {
      ...common,
      issuer: `${cloud}/${tenant.toLowerCase()}/v2.0`,
      scope: opts.scope ?? ['openid', 'profile', 'email', 'offline_access', 'User.Read'],
    };
  },

  /**
   * GitLab (OpenID Connect, discovered from `https://gitlab.com` or a self-managed instance's base URL).
   * GitLab access tokens last two hours and come with a refresh token, rotated on every refresh.
   *
   * Defaults: scope `openid profile email read_user`, API `{baseUrl}/api/v4` (e.g. `GET /user`).
   *
   * Docs: https://docs.gitlab.com/api/oauth2/, https://docs.gitlab.com/integration/openid_connect_provider/
   */
  gitlab(opts: GitLabOptions): ProviderPreset {
    const creds = credentials('gitlab', opts);
    const base = baseUrl('gitlab', 'baseUrl', opts.baseUrl, 'https://gitlab.com');
    return {
      ...creds,
      issuer: base,
      scope: opts.scope ?? ['openid', 'profile', 'email', 'read_user'],
      ...(opts.authorizationParams ? { authorizationParams: { ...opts.authorizationParams } } : {}),
      apiBaseUrl: opts.apiBaseUrl ?? `${base}/api/v4`,
    };
  },

  /**
   * Nylas v3 Hosted OAuth with an access token: endpoints `https://api.{region}.nylas.com/v3/connect/auth`
   * and `/v3/connect/token`. `clientSecret` is the Nylas application's API key, sent in the request body
   * as Nylas documents. `access_type=offline` is sent so Nylas returns a refresh token.
   *
   * The token response also carries `grant_id`, `email` and `provider`; only the standard fields are kept.
   * The access token works on `/v3/grants/me/...` (e.g. `GET /v3/grants/me` for the grant itself). Scopes
   * are the connector's (e.g. Google or Microsoft scopes); with none given, the connector's defaults apply.
   * Nylas's revocation endpoint is not RFC 7009, so logout ends the local session only.
   *
   * Default API: the region's base URL.
   *
   * Docs: https://developer.nylas.com/docs/v3/auth/hosted-oauth-accesstoken/,
   * https://developer.nylas.com/docs/reference/api/authentication-apis/get_oauth2_flow/,
   * https://developer.nylas.com/docs/reference/api/authentication-apis/exchange_oauth2_token/
   */
  nylas(opts: NylasOptions): ProviderPreset {
    const creds = credentials('nylas', opts);
    const region = opts.region ?? 'us';
    if (region !== 'us' && region !== 'eu') fail(`nylas(): \`region\` must be "us" or "eu" (got ${JSON.stringify(region)}).`);
    const base = baseUrl('nylas', 'apiUri', opts.apiUri, `https://api.${region}.nylas.com`);
    return {
      ...creds,
      // Nylas's ID tokens name the API base URL as issuer; the package checks it when one comes back.
      issuer: base,
      authorizationEndpoint: `${base}/v3/connect/auth`,
      tokenEndpoint: `${base}/v3/connect/token`,
      tokenEndpointAuthMethod: 'client_secret_post',
      ...(opts.scope === undefined ? {} : { scope: opts.scope }),
      authorizationParams: { access_type: 'offline', ...(opts.provider ? { provider: opts.provider } : {}), ...opts.authorizationParams },
      apiBaseUrl: opts.apiBaseUrl ?? base,
    };
  },
};

/** The type of {@link providers}. */
export type Providers = typeof providers;
