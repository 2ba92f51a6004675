import { ConfigError } from './errors.js';
import { safeReturnTo } from './return-to.js';
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
  logger: true,
  allowInsecureHttp: true,
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

/** Options resolved once at startup. */
export interface ResolvedConfig {
  issuer: string | undefined;
  endpoints: ExplicitEndpoints | undefined;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  appOrigin: string;
  scope: string;
  openid: boolean;
  apiOrigins: Set<string>;
  apiBaseUrl: string;
  tokenStore: TokenStore;
  encryptionKeys: string[];
  paths: { login: string; callback: string; logout: string };
  tokenEndpointAuthMethod: 'client_secret_basic' | 'client_secret_post';
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
  logger: Logger;
  allowInsecureHttp: boolean;
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

function didYouMean(key: string): string {
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

/** Bits a secret must be estimated to hold to be accepted as `encryptionKey` (256 bits of HKDF input key). */
export const MIN_KEY_BITS = 128;

const KEYBOARD_ROWS = [
  'qwertyuiop',
  'asdfghjkl',
  'zxcvbnm',
  '1234567890',
  '!@#$%^&*()',
  'qwertzuiop',
  'azertyuiop',
  'yxcvbnm',
  // Column walks.
  '1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/',
  '!qaz@wsx#edc$rfv%tgb^yhn&ujm*ik<(ol>)p:?',
];
const KEYBOARD = [...KEYBOARD_ROWS, ...KEYBOARD_ROWS.map((r) => [...r].reverse().join(''))];

/** Size of the alphabet the characters of `s` appear to come from (hex keys count as 16). */
function alphabetSize(s: string): number {
  if (/^[0-9a-f]+$/.test(s) || /^[0-9A-F]+$/.test(s)) return 16;
  let pool = 0;
  if (/[a-z]/.test(s)) pool += 26;
  if (/[A-Z]/.test(s)) pool += 26;
  if (/[0-9]/.test(s)) pool += 10;
  if (/[\x20-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/.test(s)) pool += 33;
  if (/[^\x20-\x7e]/.test(s)) pool += 100;
  return Math.max(pool, 2);
}

/**
 * Bits of `s` when it is read as literal characters, runs and repeats, left to right: at each position
 * the longest of a repeat of earlier text, an alphabet or digit run (`abcd`, `9876`) or a keyboard run
 * (`qwerty`) of 3 or more characters costs a few bits for its position and length; any other character
 * costs log2 of the alphabet.
 */
function patternBits(s: string, pool: number): number {
  const perChar = Math.log2(pool);
  let bits = 0;
  let i = 0;
  while (i < s.length) {
    let best = 0;
    let cost = perChar;
    // A repeat of text seen before (overlapping allowed: "aaaa", "abcabcabc").
    let len = 0;
    while (i + len < s.length && s.indexOf(s.slice(i, i + len + 1)) < i) len++;
    if (len >= 3) [best, cost] = [len, 1 + Math.log2(i + 1) + Math.log2(len)];
    // A run with a constant step of +1 or -1 (alphabet, digits).
    const step = s.charCodeAt(i + 1) - s.charCodeAt(i);
    if (step === 1 || step === -1) {
      let run = 2;
      while (i + run < s.length && s.charCodeAt(i + run) - s.charCodeAt(i + run - 1) === step) run++;
      if (run >= 3 && run > best) [best, cost] = [run, perChar + 1 + Math.log2(run)];
    }
    // A run along a keyboard row, either way.
    let kb = 0;
    while (i + kb < s.length && KEYBOARD.some((row) => row.includes(s.slice(i, i + kb + 1).toLowerCase()))) kb++;
    if (kb >= 3 && kb > best) [best, cost] = [kb, 7 + Math.log2(kb)];
    bits += cost;
    i += Math.max(best, 1);
  }
  return bits;
}

/** Letters that read like a word of a language (enough vowels), e.g. `horse`, `encryptionkey`. */
const wordLike = (t: string) => t.length >= 3 && /^[a-z]+$/.test(t) && (t.match(/[aeiou]/g)?.length ?? 0) / t.length >= 0.25;

/**
 * Bits of `s` read as words: split at separators, digits and case changes; a token that reads like
 * words costs about 2.3 bits a letter (some 11 bits a word of a passphrase list), a token seen before a
 * few bits, separators 2 bits, anything else its {@link patternBits}.
 */
function wordBits(s: string, pool: number): number {
  const tokens = s.match(/[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+|[^A-Za-z0-9]/g) ?? [];
  const seen = new Set<string>();
  let bits = 0;
  for (const token of tokens) {
    const lower = token.toLowerCase();
    if (seen.has(lower)) bits += 1 + Math.log2(seen.size + 1);
    else if (/^[\s\-_.,:;|~]$/.test(token)) bits += 2;
    else bits += Math.min(patternBits(token, pool), wordLike(lower) ? 2.3 * lower.length : Infinity);
    seen.add(lower);
  }
  return bits;
}

/**
 * A conservative estimate of the entropy of a secret, in bits: the least of a character-class estimate
 * (length × log2 of the alphabet), a pattern estimate (repeats, alphabet, digit and keyboard runs) and a
 * word estimate (passphrases). Base64, base64url or hex of 32 random bytes estimate far above
 * {@link MIN_KEY_BITS}; passphrases of words and repeated patterns far below.
 */
export function estimateKeyBits(key: string): number {
  const pool = alphabetSize(key);
  return Math.min(key.length * Math.log2(pool), patternBits(key, pool), wordBits(key, pool));
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
  if (typeof options.clientSecret !== 'string' || options.clientSecret.length === 0) {
    fail('`clientSecret` is required: this package is a confidential client (set it from an environment variable, never in code).');
  }

  const explicit = options.authorizationEndpoint !== undefined || options.tokenEndpoint !== undefined;
  let endpoints: ExplicitEndpoints | undefined;
  let issuer: string | undefined;
  if (options.issuer !== undefined) {
    // The issuer identifier is compared as an exact string (discovery, `iss`, ID tokens): keep it as given.
    parseUrlOption('issuer', options.issuer, allowInsecureHttp);
    issuer = options.issuer;
  }
  if (explicit) {
    if (options.authorizationEndpoint === undefined || options.tokenEndpoint === undefined) {
      fail('`authorizationEndpoint` and `tokenEndpoint` go together: give both, or give only `issuer` to use discovery.');
    }
    const opt = (name: keyof OAuthOptions) => {
      const v = options[name];
      return v === undefined ? undefined : parseUrlOption(name, v, allowInsecureHttp).href;
    };
    endpoints = {
      authorization_endpoint: opt('authorizationEndpoint')!,
      token_endpoint: opt('tokenEndpoint')!,
      revocation_endpoint: opt('revocationEndpoint'),
      userinfo_endpoint: opt('userinfoEndpoint'),
      end_session_endpoint: opt('endSessionEndpoint'),
      jwks_uri: opt('jwksUri'),
    };
  } else {
    for (const name of ['revocationEndpoint', 'userinfoEndpoint', 'endSessionEndpoint', 'jwksUri'] as const) {
      if (options[name] !== undefined) fail(`\`${name}\` is only used with explicit endpoints; with discovery it comes from the issuer's metadata.`);
    }
    if (issuer === undefined) fail('`issuer` is required (discovery), or give `authorizationEndpoint` and `tokenEndpoint` explicitly.');
  }

  const redirect = parseUrlOption('redirectUri', options.redirectUri, allowInsecureHttp);
  if (redirect.hash || redirect.search) fail('`redirectUri` must not have a query or fragment.');
  if (redirect.href !== options.redirectUri) {
    fail(`\`redirectUri\` must be written in normalized form so it is sent byte-for-byte: use ${JSON.stringify(redirect.href)}.`);
  }

  let scopeList: string[];
  if (options.scope === undefined) scopeList = issuer !== undefined && !explicit ? ['openid'] : [];
  else if (typeof options.scope === 'string') scopeList = options.scope.split(' ').filter(Boolean);
  else if (Array.isArray(options.scope) && options.scope.every((s) => typeof s === 'string')) scopeList = options.scope;
  else fail('`scope` must be a space-separated string or an array of strings.');
  if (scopeList.some((s) => /[\s"\\]/.test(s) || s.length === 0)) fail('`scope` values must not contain spaces, quotes or backslashes.');
  const openid = scopeList.includes('openid');
  if (openid && explicit && !options.jwksUri) {
    fail('`openid` is in `scope` with explicit endpoints: give `jwksUri` (and `issuer`) so ID tokens can be validated, or use discovery.');
  }
  if (openid && explicit && !issuer) fail('`openid` is in `scope` with explicit endpoints: give `issuer` so ID tokens can be validated.');

  const apiList = Array.isArray(options.apiBaseUrl) ? options.apiBaseUrl : [options.apiBaseUrl];
  if (apiList.length === 0 || options.apiBaseUrl === undefined) {
    fail("`apiBaseUrl` is required: the base URL(s) of the API the user's token is sent to (nothing else receives it).");
  }
  const apiUrls = apiList.map((u, i) => parseUrlOption(apiList.length > 1 ? `apiBaseUrl[${i}]` : 'apiBaseUrl', u, allowInsecureHttp));

  const store = options.tokenStore as TokenStore | undefined;
  const storeMethods = ['get', 'set', 'replace', 'deleteIf', 'delete', 'lock', 'unlock'] as const;
  if (!store || storeMethods.some((m) => typeof (store as unknown as Record<string, unknown>)[m] !== 'function')) {
    fail('`tokenStore` is required: new RedisTokenStore({ client }) (or MemoryTokenStore for development).');
  }

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
    if (k === options.clientSecret) fail(`\`${name}\` must not be the client secret: generate a separate key.`);
  });
  if (new Set(keyList).size !== keyList.length) fail('`encryptionKey` lists the same key twice.');

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

  const method = options.tokenEndpointAuthMethod ?? 'client_secret_basic';
  if (method !== 'client_secret_basic' && method !== 'client_secret_post') {
    fail(`\`tokenEndpointAuthMethod\` must be 'client_secret_basic' or 'client_secret_post' (got ${JSON.stringify(method)}).`);
  }

  const paths = {
    login: pathOption('login', options.paths?.login, '/oauth/login'),
    callback: pathOption('callback', options.paths?.callback, redirect.pathname),
    logout: pathOption('logout', options.paths?.logout, '/oauth/logout'),
  };
  if (options.paths) {
    for (const k of Object.keys(options.paths)) if (!['login', 'callback', 'logout'].includes(k)) fail(`unknown option \`paths.${k}\`.`);
  }
  if (new Set(Object.values(paths)).size !== 3) fail('`paths.login`, `paths.callback` and `paths.logout` must differ.');

  // Redirect targets set in configuration obey rule 9 too: a same-origin path that stays one once parsed.
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

  const logger = options.logger ?? consoleLogger;
  if (typeof logger.warn !== 'function' || typeof logger.error !== 'function') fail('`logger` must have `warn` and `error` functions.');

  const userClaims = options.userClaims ?? ['sub', 'name', 'email', 'preferred_username', 'picture'];
  if (!Array.isArray(userClaims) || !userClaims.every((c) => typeof c === 'string')) fail('`userClaims` must be an array of claim names.');

  const cookieName = options.sessionCookieName ?? 'connect.sid';
  if (typeof cookieName !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookieName)) fail('`sessionCookieName` must be a valid cookie name.');

  return {
    issuer,
    endpoints,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    redirectUri: redirect.href,
    appOrigin: redirect.origin,
    scope: scopeList.join(' '),
    openid,
    apiOrigins: new Set(apiUrls.map((u) => u.origin)),
    apiBaseUrl: apiUrls[0]!.href,
    tokenStore: store,
    encryptionKeys: keyList,
    paths,
    tokenEndpointAuthMethod: method,
    authorizationParams: authParams,
    httpTimeout: positiveNumber('httpTimeout', options.httpTimeout, 10_000, { min: 1 }),
    maxResponseBytes: positiveNumber('maxResponseBytes', options.maxResponseBytes, 1024 * 1024, { integer: true, min: 1024 }),
    clockTolerance: positiveNumber('clockTolerance', options.clockTolerance, 5),
    refreshLeeway: positiveNumber('refreshLeeway', options.refreshLeeway, 60),
    tokenTtl: positiveNumber('tokenTtl', options.tokenTtl, 14 * 24 * 3600, { min: 60 }),
    storeTimeout: positiveNumber('storeTimeout', options.storeTimeout, 2000, { min: 1 }),
    tokenCacheMs: positiveNumber('tokenCacheMs', options.tokenCacheMs, 2000, { max: 60_000 }),
    sessionCookieName: cookieName,
    postLogoutRedirectUri: postLogout,
    accessDeniedRedirect: accessDenied,
    userClaims,
    logger,
    allowInsecureHttp,
  };
}
