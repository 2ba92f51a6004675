import { resolveClientAuth, type ClientAuthMethod, type ResolvedClientAuth } from './client-auth.js';
import { ConfigError } from './errors.js';
import { MIN_KEY_BITS, estimateKeyBits } from './key-strength.js';
import { ROUTES, ROUTE_NAMES, type InstanceRole, type RouteName } from './routes/table.js';
import { safeReturnTo } from './return-to.js';
import type { Request } from 'express';
import type { Logger, OAuthOptions } from './types.js';
import type { TokenStore } from './token-store/types.js';

/** Every option key, kept complete by the compiler: adding an option without listing it fails to build. */
type KeysEnum<T> = { [P in keyof Required<T>]: true };
const OPTION_KEYS: KeysEnum<OAuthOptions> = {
  issuer: true,
  authorizationEndpoint: true,
  tokenEndpoint: true,
  revocationEndpoint: true,
  userinfoEndpoint: true,
  endSessionEndpoint: true,
  jwksUri: true,
  clientId: true,
  clientSecret: true,
  redirectUri: true,
  scope: true,
  apiBaseUrl: true,
  tokenStore: true,
  encryptionKey: true,
  paths: true,
  tokenEndpointAuthMethod: true,
  clientAssertionKey: true,
  clientAssertionAlg: true,
  pushedAuthorizationRequests: true,
  dpop: true,
  authorizationParams: true,
  httpTimeout: true,
  maxResponseBytes: true,
  clockTolerance: true,
  refreshLeeway: true,
  tokenTtl: true,
  storeTimeout: true,
  tokenCacheMs: true,
  sessionCookieName: true,
  postLogoutRedirectUri: true,
  accessDeniedRedirect: true,
  userClaims: true,
  fetchUserInfo: true,
  logger: true,
  allowInsecureHttp: true,
  name: true,
  role: true,
  keepSessionData: true,
  requireLogin: true,
  allowedScopes: true,
  backchannelLogout: true,
  absoluteLifetime: true,
  idleTimeout: true,
  sessionUserAgent: true,
};

/** Parameters the package sets itself; `authorizationParams` may not override them. */
const PROTECTED_PARAMS = new Set([
  'client_id',
  'redirect_uri',
  'response_type',
  'response_mode',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'scope',
  'request',
  'request_uri',
]);

/** Endpoints of a provider given explicitly (plain OAuth 2.0 providers such as GitHub). */
export interface ExplicitEndpoints {
  authorization_endpoint: string;
  token_endpoint: string;
  revocation_endpoint?: string;
  userinfo_endpoint?: string;
  end_session_endpoint?: string;
  jwks_uri?: string;
}

/** The routes an instance mounts: login and callback always, logout (login role) or disconnect (connect role). */
export type ResolvedPaths = Record<'login' | 'callback', string> & Partial<Record<RouteName, string>>;

/** The name of the instance made without `name`: its session key, paths and record keys are those of 1.x. */
export const DEFAULT_NAME = 'default';

/** Options resolved once at startup. */
export interface ResolvedConfig {
  /** `name`, or {@link DEFAULT_NAME}. */
  name: string;
  /** Whether the instance was given a name of its own (namespaced session key, paths and record keys). */
  named: boolean;
  role: InstanceRole;
  /** Where the instance keeps its data in `req.session`: `oauth` (default instance) or `oauth:<name>`. */
  sessionKey: string;
  keepSessionData: boolean;
  /** Connect instances: whether the app must consider the user logged in; `'login'` means its login instance's login. */
  requireLogin: ((req: Request) => boolean | Promise<boolean>) | 'login' | undefined;
  /** Scopes a login may add with `?scope=` (incremental authorization). */
  allowedScopes: ReadonlySet<string>;
  issuer: string | undefined;
  endpoints: ExplicitEndpoints | undefined;
  clientId: string;
  /** Undefined with `private_key_jwt`. */
  clientSecret: string | undefined;
  /** The client authentication method and, for `private_key_jwt`, its signing keys. */
  clientAuth: ResolvedClientAuth;
  /** True: always PAR; false: never (a provider that requires it is a startup error); undefined: when the metadata requires it. */
  pushedAuthorizationRequests: boolean | undefined;
  /** DPoP-bound tokens (RFC 9449): a key pair per login, kept in the encrypted token record. */
  dpop: boolean;
  redirectUri: string;
  appOrigin: string;
  scope: string;
  openid: boolean;
  apiOrigins: Set<string>;
  /** Undefined in a login-only app: `req.oauthClient` then refuses every call (`api_not_configured`). */
  apiBaseUrl: string | undefined;
  tokenStore: TokenStore;
  encryptionKeys: string[];
  paths: ResolvedPaths;
  tokenEndpointAuthMethod: ClientAuthMethod;
  authorizationParams: Record<string, string>;
  httpTimeout: number;
  maxResponseBytes: number;
  clockTolerance: number;
  refreshLeeway: number;
  tokenTtl: number;
  storeTimeout: number;
  tokenCacheMs: number;
  sessionCookieName: string;
  postLogoutRedirectUri: string | undefined;
  accessDeniedRedirect: string | undefined;
  userClaims: string[];
  fetchUserInfo: boolean;
  logger: Logger;
  allowInsecureHttp: boolean;
  /** Back-channel logout, when enabled (its route answers only then). */
  backchannelLogout: { revokeTokens: boolean; maxTokenAge: number } | undefined;
  /** Seconds a login may last from its start, refreshes or not; undefined: no limit. */
  absoluteLifetime: number | undefined;
  /** Seconds without a request after which a login ends; undefined: no limit. */
  idleTimeout: number | undefined;
  /** Keep the browser's User-Agent (truncated) in the session index for `auth.sessions.list`. */
  sessionUserAgent: boolean;
}

const consoleLogger: Logger = {
  warn: (message, meta) => console.warn(`express-oauth-client: ${message}`, meta ?? ''),
  error: (message, meta) => console.error(`express-oauth-client: ${message}`, meta ?? ''),
};

function fail(message: string): never {
  throw new ConfigError(`oauth(): ${message}`);
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/**
 * Option names of other libraries (passport strategies, express-openid-connect, simple-oauth2) and what
 * to write instead. Only the key is ever shown, never its value (it may be a secret).
 */
const ALIASES: Readonly<Record<string, string>> = {
  callbackURL: '`redirectUri`',
  baseURL: "`redirectUri` (express-openid-connect's baseURL is the app's origin: set redirectUri to `<baseURL>/oauth/callback`)",
  issuerBaseURL: '`issuer`',
  secret: "`encryptionKey` (and express-session's own `secret`)",
  clientID: '`clientId`',
  authorizationURL: '`authorizationEndpoint`',
  tokenURL: '`tokenEndpoint`',
  scopes: '`scope`',
};

function didYouMean(key: string): string {
  if (Object.hasOwn(ALIASES, key)) return ` Did you mean ${ALIASES[key]}?`;
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of Object.keys(OPTION_KEYS)) {
    const score = levenshtein(key, candidate);
    if (score < bestScore) [best, bestScore] = [candidate, score];
  }
  return best !== undefined && bestScore <= Math.max(2, Math.floor(key.length / 3)) ? ` Did you mean \`${best}\`?` : '';
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]' || hostname.endsWith('.localhost');
}

/** Parses an absolute URL option; http is accepted only on loopback hosts unless `allowInsecureHttp`. */
function parseUrlOption(name: string, value: unknown, allowInsecureHttp: boolean): URL {
  if (typeof value !== 'string' || value.length === 0) fail(`\`${name}\` must be an absolute URL string.`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(`\`${name}\` is not a valid absolute URL (got ${JSON.stringify(value.slice(0, 200))}).`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') fail(`\`${name}\` must use https (got ${url.protocol}).`);
  if (url.protocol === 'http:' && !isLoopback(url.hostname) && !allowInsecureHttp) {
    fail(
      `\`${name}\` uses http on ${url.hostname}: tokens would travel unencrypted. Use https (http is allowed only for localhost, 127.0.0.1 and [::1]).`,
    );
  }
  if (url.username || url.password) fail(`\`${name}\` must not contain credentials.`);
  return url;
}

function positiveNumber(name: string, value: unknown, fallback: number, { integer = false, min = 0, max = Infinity } = {}): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    const range = max === Infinity ? `>= ${min}` : `from ${min} to ${max}`;
    fail(`\`${name}\` must be a ${integer ? 'whole ' : ''}number ${range} (got ${JSON.stringify(value)}).`);
  }
  return value;
}

function pathOption(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//') || /[\s?#\\]/.test(value)) {
    fail(`\`paths.${name}\` must be a path starting with "/" (got ${JSON.stringify(value)}).`);
  }
  return value;
}

type Endpoints = Pick<ResolvedConfig, 'issuer' | 'endpoints'>;

/** `issuer` (discovery) or explicit endpoints (plain OAuth 2.0 providers). */
function resolveEndpoints(options: OAuthOptions, allowInsecureHttp: boolean): Endpoints {
  let issuer: string | undefined;
  if (options.issuer !== undefined) {
    // The issuer identifier is compared as an exact string (discovery, `iss`, ID tokens): keep it as given.
    parseUrlOption('issuer', options.issuer, allowInsecureHttp);
    issuer = options.issuer;
  }
  if (options.authorizationEndpoint === undefined && options.tokenEndpoint === undefined) {
    for (const name of ['revocationEndpoint', 'userinfoEndpoint', 'endSessionEndpoint', 'jwksUri'] as const) {
      if (options[name] !== undefined) fail(`\`${name}\` is only used with explicit endpoints; with discovery it comes from the issuer's metadata.`);
    }
    if (issuer === undefined) fail('`issuer` is required (discovery), or give `authorizationEndpoint` and `tokenEndpoint` explicitly.');
    return { issuer, endpoints: undefined };
  }
  if (options.authorizationEndpoint === undefined || options.tokenEndpoint === undefined) {
    fail('`authorizationEndpoint` and `tokenEndpoint` go together: give both, or give only `issuer` to use discovery.');
  }
  const opt = (name: keyof OAuthOptions) => {
    const v = options[name];
    return v === undefined ? undefined : parseUrlOption(name, v, allowInsecureHttp).href;
  };
  const endpoints: ExplicitEndpoints = {
    authorization_endpoint: opt('authorizationEndpoint')!,
    token_endpoint: opt('tokenEndpoint')!,
    revocation_endpoint: opt('revocationEndpoint'),
    userinfo_endpoint: opt('userinfoEndpoint'),
    end_session_endpoint: opt('endSessionEndpoint'),
    jwks_uri: opt('jwksUri'),
  };
  return { issuer, endpoints };
}

/** `scope`: default `openid` with discovery, none with explicit endpoints; ID tokens need a way to be validated. */
function resolveScope(options: OAuthOptions, { issuer, endpoints }: Endpoints): Pick<ResolvedConfig, 'scope' | 'openid'> {
  let scopeList: string[];
  if (options.scope === undefined) scopeList = issuer !== undefined && !endpoints ? ['openid'] : [];
  else if (typeof options.scope === 'string') scopeList = options.scope.split(' ').filter(Boolean);
  else if (Array.isArray(options.scope) && options.scope.every((s) => typeof s === 'string')) scopeList = options.scope;
  else fail('`scope` must be a space-separated string or an array of strings.');
  if (scopeList.some((s) => /[\s"\\]/.test(s) || s.length === 0)) fail('`scope` values must not contain spaces, quotes or backslashes.');
  const openid = scopeList.includes('openid');
  if (openid && endpoints && !options.jwksUri) {
    fail('`openid` is in `scope` with explicit endpoints: give `jwksUri` (and `issuer`) so ID tokens can be validated, or use discovery.');
  }
  if (openid && endpoints && !issuer) fail('`openid` is in `scope` with explicit endpoints: give `issuer` so ID tokens can be validated.');
  return { scope: scopeList.join(' '), openid };
}

/** `apiBaseUrl`: the only origins `req.oauthClient` ever sends the token to; none in a login-only app. */
function resolveApiOrigins(options: OAuthOptions, allowInsecureHttp: boolean): Pick<ResolvedConfig, 'apiOrigins' | 'apiBaseUrl'> {
  if (options.apiBaseUrl === undefined) return { apiOrigins: new Set(), apiBaseUrl: undefined };
  const apiList = Array.isArray(options.apiBaseUrl) ? options.apiBaseUrl : [options.apiBaseUrl];
  if (apiList.length === 0) {
    fail("`apiBaseUrl` is an empty list: give the base URL(s) of the API the user's token is sent to, or leave it out for a login-only app.");
  }
  const apiUrls = apiList.map((u, i) => parseUrlOption(apiList.length > 1 ? `apiBaseUrl[${i}]` : 'apiBaseUrl', u, allowInsecureHttp));
  return { apiOrigins: new Set(apiUrls.map((u) => u.origin)), apiBaseUrl: apiUrls[0]!.href };
}

/** `fetchUserInfo`: a boolean; with explicit endpoints it needs `userinfoEndpoint` (discovery checks the metadata). */
function resolveFetchUserInfo(options: OAuthOptions, { endpoints }: Endpoints): boolean {
  const v = options.fetchUserInfo ?? false;
  if (typeof v !== 'boolean') fail(`\`fetchUserInfo\` must be true or false (got ${JSON.stringify(v)}).`);
  if (v && endpoints && !endpoints.userinfo_endpoint) fail('`fetchUserInfo` is true with explicit endpoints: give `userinfoEndpoint` too.');
  return v;
}

const STORE_METHODS = ['get', 'set', 'replace', 'deleteIf', 'delete', 'lock', 'unlock'] as const;

function resolveTokenStore(options: OAuthOptions): TokenStore {
  const store = options.tokenStore as TokenStore | undefined;
  if (!store || STORE_METHODS.some((m) => typeof (store as unknown as Record<string, unknown>)[m] !== 'function')) {
    fail('`tokenStore` is required: new RedisTokenStore({ client }) (or MemoryTokenStore for development).');
  }
  return store;
}

/** `backchannelLogout`, `absoluteLifetime`, `idleTimeout`, `sessionUserAgent`: sessions across devices (docs/sessions.md). */
function resolveSessionOptions(
  options: OAuthOptions,
  store: TokenStore,
  openid: boolean,
): Pick<ResolvedConfig, 'backchannelLogout' | 'absoluteLifetime' | 'idleTimeout' | 'sessionUserAgent'> {
  const v = options.backchannelLogout;
  let backchannelLogout: ResolvedConfig['backchannelLogout'];
  if (v !== undefined && v !== false) {
    if (v !== true && (typeof v !== 'object' || v === null)) fail('`backchannelLogout` must be true, false or `{ revokeTokens?, maxTokenAge? }`.');
    const o = v === true ? {} : v;
    for (const k of Object.keys(o)) if (k !== 'revokeTokens' && k !== 'maxTokenAge') fail(`unknown option \`backchannelLogout.${k}\`.`);
    if (o.revokeTokens !== undefined && typeof o.revokeTokens !== 'boolean') fail('`backchannelLogout.revokeTokens` must be true or false.');
    backchannelLogout = {
      revokeTokens: o.revokeTokens ?? true,
      maxTokenAge: positiveNumber('backchannelLogout.maxTokenAge', o.maxTokenAge, 120, { min: 10, max: 3600 }),
    };
    if (!openid)
      fail('`backchannelLogout` needs `openid` in `scope`: logout tokens name the provider session (`sid`) and the user (`sub`) of an ID token.');
    if (typeof store.indexAdd !== 'function' || typeof store.indexGet !== 'function' || typeof store.indexRemove !== 'function') {
      fail(
        '`backchannelLogout` needs a token store with the session index (`indexAdd`, `indexGet`, `indexRemove`): RedisTokenStore and MemoryTokenStore have it; add the three methods to your custom store (docs/token-store.md).',
      );
    }
  }
  const absoluteLifetime =
    options.absoluteLifetime === undefined ? undefined : positiveNumber('absoluteLifetime', options.absoluteLifetime, 0, { min: 1 });
  const idleTimeout = options.idleTimeout === undefined ? undefined : positiveNumber('idleTimeout', options.idleTimeout, 0, { min: 1 });
  const ua = options.sessionUserAgent ?? false;
  if (typeof ua !== 'boolean') fail('`sessionUserAgent` must be true or false.');
  return { backchannelLogout, absoluteLifetime, idleTimeout, sessionUserAgent: ua };
}

/** `encryptionKey`: one or more secrets of at least {@link MIN_KEY_BITS} estimated bits, none the client secret. */
function resolveKeys(options: OAuthOptions): string[] {
  const keyList = Array.isArray(options.encryptionKey) ? options.encryptionKey : [options.encryptionKey];
  if (options.encryptionKey === undefined || keyList.length === 0) {
    fail('`encryptionKey` is required: at least 32 random characters, e.g. `openssl rand -base64 32`, from an environment variable.');
  }
  keyList.forEach((k, i) => {
    const name = keyList.length > 1 ? `encryptionKey[${i}]` : 'encryptionKey';
    if (typeof k !== 'string') fail(`\`${name}\` must be a string.`);
    if (k.length < 32)
      fail(`\`${name}\` is too short (${k.length} characters): use at least 32 random characters, e.g. \`openssl rand -base64 32\`.`);
    const bits = estimateKeyBits(k);
    if (bits < MIN_KEY_BITS) {
      fail(
        `\`${name}\` is not random enough (an estimated ${Math.floor(bits)} bits, ${MIN_KEY_BITS} needed: words, repeats and runs are easy to guess): generate it with \`openssl rand -base64 32\`.`,
      );
    }
    if (options.clientSecret !== undefined && k === options.clientSecret) fail(`\`${name}\` must not be the client secret: generate a separate key.`);
  });
  if (new Set(keyList).size !== keyList.length) fail('`encryptionKey` lists the same key twice.');
  return keyList;
}

/** `authorizationParams` (protocol parameters cannot be overridden), client authentication, PAR and DPoP. */
function resolveProtocolOptions(
  options: OAuthOptions,
): Pick<ResolvedConfig, 'authorizationParams' | 'tokenEndpointAuthMethod' | 'clientAuth' | 'clientSecret' | 'pushedAuthorizationRequests' | 'dpop'> {
  const authParams: Record<string, string> = {};
  if (options.authorizationParams !== undefined) {
    if (typeof options.authorizationParams !== 'object' || options.authorizationParams === null)
      fail('`authorizationParams` must be an object of strings.');
    for (const [k, v] of Object.entries(options.authorizationParams)) {
      if (PROTECTED_PARAMS.has(k)) fail(`\`authorizationParams.${k}\` cannot be set: the package sets it (use \`scope\` for scopes).`);
      if (typeof v !== 'string') fail(`\`authorizationParams.${k}\` must be a string.`);
      authParams[k] = v;
    }
  }
  const clientAuth = resolveClientAuth(options, fail);
  const par = options.pushedAuthorizationRequests;
  if (par !== undefined && typeof par !== 'boolean') fail(`\`pushedAuthorizationRequests\` must be true or false (got ${JSON.stringify(par)}).`);
  const dpop = options.dpop ?? false;
  if (typeof dpop !== 'boolean') fail(`\`dpop\` must be true or false (got ${JSON.stringify(dpop)}).`);
  // With private_key_jwt a configured secret is not used: it is not kept either.
  const clientSecret = clientAuth.method === 'private_key_jwt' ? undefined : (options.clientSecret as string);
  return {
    authorizationParams: authParams,
    tokenEndpointAuthMethod: clientAuth.method,
    clientAuth,
    clientSecret,
    pushedAuthorizationRequests: par,
    dpop,
  };
}

/** `paths`: one per route of the instance's role, each a plain path, all different; `/oauth/<name>/...` by default when named. */
function resolvePaths(options: OAuthOptions, redirect: URL, identity: InstanceIdentity): ResolvedPaths {
  const given = options.paths;
  const backchannel = options.backchannelLogout !== undefined && options.backchannelLogout !== false;
  const mine = ROUTE_NAMES.filter(
    (n) => (ROUTES[n].roles as readonly InstanceRole[]).includes(identity.role) && (n !== 'backchannelLogout' || backchannel),
  );
  if (given !== undefined) {
    if (typeof given !== 'object' || given === null) fail('`paths` must be an object.');
    for (const k of Object.keys(given)) {
      if (!(k in ROUTES)) fail(`unknown option \`paths.${k}\`.`);
      if (!mine.includes(k as RouteName))
        fail(`\`paths.${k}\` is not a route of a \`role: '${identity.role}'\` instance (its routes: ${mine.join(', ')}).`);
    }
  }
  const paths: Partial<Record<RouteName, string>> = {};
  for (const name of mine) {
    const row = ROUTES[name].defaultPath;
    const fallback =
      row === 'redirectUri' ? redirect.pathname : identity.named ? `/oauth/${identity.name}/${row.slice(row.lastIndexOf('/') + 1)}` : row;
    paths[name] = pathOption(name, given?.[name], fallback);
  }
  if (new Set(Object.values(paths)).size !== mine.length) {
    const names = mine.map((n) => `\`paths.${n}\``);
    fail(`${names.slice(0, -1).join(', ')} and ${names.at(-1)} must differ.`);
  }
  return paths as ResolvedPaths;
}

type InstanceIdentity = Pick<ResolvedConfig, 'name' | 'named' | 'role' | 'sessionKey' | 'keepSessionData' | 'requireLogin' | 'allowedScopes'>;

const NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;

/** `name`, `role`, `keepSessionData`, `requireLogin` and `allowedScopes`: what an instance is among the app's providers. */
function resolveIdentity(options: OAuthOptions): InstanceIdentity {
  const raw = options.name;
  if (raw !== undefined && (typeof raw !== 'string' || !NAME_RE.test(raw))) {
    fail(`\`name\` must be 1 to 32 lower-case letters, digits or "-", starting with a letter, e.g. 'github' (got ${JSON.stringify(raw)}).`);
  }
  const name = raw ?? DEFAULT_NAME;
  const named = name !== DEFAULT_NAME;
  const role = options.role ?? (named ? undefined : 'login');
  if (role === undefined)
    fail(`\`role\` is required with \`name: '${name}'\`: 'login' (it logs the user in) or 'connect' (it links an API account to the session).`);
  if (role !== 'login' && role !== 'connect') fail(`\`role\` must be 'login' or 'connect' (got ${JSON.stringify(role)}).`);
  if (role === 'connect' && !named) fail("`role: 'connect'` needs a `name` (e.g. name: 'github'): connections are told apart by name.");
  if (options.keepSessionData !== undefined && typeof options.keepSessionData !== 'boolean') fail('`keepSessionData` must be true or false.');
  let requireLogin: InstanceIdentity['requireLogin'];
  if (options.requireLogin !== undefined && options.requireLogin !== false) {
    if (role !== 'connect') fail("`requireLogin` is an option of `role: 'connect'` instances (a login instance is the login).");
    if (options.requireLogin === true) requireLogin = 'login';
    else if (typeof options.requireLogin === 'function') requireLogin = options.requireLogin;
    else fail("`requireLogin` must be true (the app's login instance must be logged in) or a function (req) => boolean.");
  }
  const allowed = options.allowedScopes ?? [];
  if (!Array.isArray(allowed) || allowed.some((s) => typeof s !== 'string' || s.length === 0 || /[\s"\\]/.test(s))) {
    fail('`allowedScopes` must be an array of scope values (no spaces, quotes or backslashes).');
  }
  return {
    name,
    named,
    role,
    sessionKey: named ? `oauth:${name}` : 'oauth',
    keepSessionData: options.keepSessionData ?? true,
    requireLogin,
    allowedScopes: new Set(allowed),
  };
}

/** `redirectUri` (byte-for-byte), and the post-logout and access-denied targets (same-origin paths, RFC 9700 §4.11). */
function resolveRedirects(
  options: OAuthOptions,
  allowInsecureHttp: boolean,
): Pick<ResolvedConfig, 'redirectUri' | 'appOrigin' | 'postLogoutRedirectUri' | 'accessDeniedRedirect'> & { redirect: URL } {
  const redirect = parseUrlOption('redirectUri', options.redirectUri, allowInsecureHttp);
  if (redirect.hash || redirect.search) fail('`redirectUri` must not have a query or fragment.');
  if (redirect.href !== options.redirectUri) {
    fail(`\`redirectUri\` must be written in normalized form so it is sent byte-for-byte: use ${JSON.stringify(redirect.href)}.`);
  }
  // Redirect targets set in configuration follow the same-origin rule of `returnTo`: a path that stays one once parsed.
  const samePath = (value: string) => safeReturnTo(value, redirect.origin) === value;
  let postLogout: string | undefined;
  if (options.postLogoutRedirectUri !== undefined) {
    const v = options.postLogoutRedirectUri;
    if (typeof v === 'string' && v.startsWith('/')) {
      if (!samePath(v)) fail('`postLogoutRedirectUri` must be a plain path on this app (no `//`, backslashes or control characters).');
      postLogout = new URL(v, redirect.origin).href;
    } else {
      const u = parseUrlOption('postLogoutRedirectUri', v, allowInsecureHttp);
      if (u.origin !== redirect.origin || !samePath(`${u.pathname}${u.search}${u.hash}`)) {
        fail('`postLogoutRedirectUri` must be on the same origin as `redirectUri`.');
      }
      postLogout = u.href;
    }
  }
  let accessDenied: string | undefined;
  if (options.accessDeniedRedirect !== undefined) {
    if (typeof options.accessDeniedRedirect !== 'string' || !samePath(options.accessDeniedRedirect)) {
      fail('`accessDeniedRedirect` must be a plain path on this app starting with "/" (no `//`, backslashes or control characters).');
    }
    accessDenied = options.accessDeniedRedirect;
  }
  return { redirect, redirectUri: redirect.href, appOrigin: redirect.origin, postLogoutRedirectUri: postLogout, accessDeniedRedirect: accessDenied };
}

/** Validates the options of `oauth()` once, at startup, and returns the resolved configuration. */
export function resolveConfig(options: OAuthOptions): ResolvedConfig {
  if (typeof options !== 'object' || options === null) fail('expects an options object.');
  for (const key of Object.keys(options)) {
    if (!(key in OPTION_KEYS)) fail(`unknown option \`${key}\`.${didYouMean(key)}`);
  }
  const allowInsecureHttp = options.allowInsecureHttp === true;

  if (typeof options.clientId !== 'string' || options.clientId.length === 0) {
    fail('`clientId` is required: the client identifier registered at the provider.');
  }
  if (options.clientSecret !== undefined && (typeof options.clientSecret !== 'string' || options.clientSecret.length === 0)) {
    fail('`clientSecret` is required: this package is a confidential client (set it from an environment variable, never in code).');
  }

  const endpoints = resolveEndpoints(options, allowInsecureHttp);
  const { redirect, ...redirects } = resolveRedirects(options, allowInsecureHttp);
  const scope = resolveScope(options, endpoints);
  const api = resolveApiOrigins(options, allowInsecureHttp);
  const tokenStore = resolveTokenStore(options);
  const encryptionKeys = resolveKeys(options);
  const protocol = resolveProtocolOptions(options);
  const identity = resolveIdentity(options);
  const paths = resolvePaths(options, redirect, identity);

  const logger = options.logger ?? consoleLogger;
  if (typeof logger.warn !== 'function' || typeof logger.error !== 'function') fail('`logger` must have `warn` and `error` functions.');

  const userClaims = options.userClaims ?? ['sub', 'name', 'email', 'preferred_username', 'picture'];
  if (!Array.isArray(userClaims) || !userClaims.every((c) => typeof c === 'string')) fail('`userClaims` must be an array of claim names.');

  const fetchUserInfo = resolveFetchUserInfo(options, endpoints);

  const cookieName = options.sessionCookieName ?? 'connect.sid';
  if (typeof cookieName !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookieName)) fail('`sessionCookieName` must be a valid cookie name.');

  return {
    ...identity,
    ...endpoints,
    clientId: options.clientId,
    ...redirects,
    ...scope,
    ...api,
    tokenStore,
    encryptionKeys,
    paths,
    ...protocol,
    httpTimeout: positiveNumber('httpTimeout', options.httpTimeout, 10_000, { min: 1 }),
    maxResponseBytes: positiveNumber('maxResponseBytes', options.maxResponseBytes, 1024 * 1024, { integer: true, min: 1024 }),
    clockTolerance: positiveNumber('clockTolerance', options.clockTolerance, 5),
    refreshLeeway: positiveNumber('refreshLeeway', options.refreshLeeway, 60),
    tokenTtl: positiveNumber('tokenTtl', options.tokenTtl, 14 * 24 * 3600, { min: 60 }),
    storeTimeout: positiveNumber('storeTimeout', options.storeTimeout, 2000, { min: 1 }),
    tokenCacheMs: positiveNumber('tokenCacheMs', options.tokenCacheMs, 2000, { max: 60_000 }),
    sessionCookieName: cookieName,
    userClaims,
    fetchUserInfo,
    logger,
    allowInsecureHttp,
    ...resolveSessionOptions(options, tokenStore, scope.openid),
  };
}
