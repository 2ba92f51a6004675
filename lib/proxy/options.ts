import { ConfigError } from '../errors.js';
import { DEFAULT_REQUEST_HEADERS, DEFAULT_RESPONSE_HEADERS, extraHeaders, headerList } from './headers.js';

/** Options of {@link oauthProxy}. `undefined` means "use the default". */
export interface OAuthProxyOptions {
  /**
   * The API base URL the mount path maps to, e.g. `https://api.github.com` or `https://api.example.com/v2`.
   * Its origin must be one of `apiBaseUrl`'s (checked on each call: the token never goes anywhere else).
   * The browser chooses only the path under it, and the query.
   */
  target: string;
  /** Methods passed through; others get 405. Default `GET HEAD POST PUT PATCH DELETE`. */
  methods?: string[];
  /** Anti-CSRF header every call must carry. Default `X-CSRF`. */
  csrfHeader?: string;
  /** Its exact value. Default `1`. */
  csrfValue?: string;
  /** Deadline of one call, headers and bodies both ways, in ms. Default: `httpTimeout` of `oauth()`. */
  timeout?: number;
  /** Largest request body, in bytes (413 beyond). Default 10 MiB. */
  maxRequestBytes?: number;
  /** Largest response body, in bytes (502 before the headers, a cut connection after). Default 100 MiB. */
  maxResponseBytes?: number;
  /** Browser headers passed upstream. Default {@link DEFAULT_REQUEST_HEADERS}; credentials and hop-by-hop headers are refused. */
  requestHeaders?: string[];
  /** Upstream headers passed back. Default {@link DEFAULT_RESPONSE_HEADERS}; `Set-Cookie`, hop-by-hop headers and `Location` are refused. */
  responseHeaders?: string[];
  /** Extra headers sent upstream on every call (e.g. `{ 'x-github-api-version': '2022-11-28' }`). */
  headers?: Record<string, string>;
  /**
   * Mask the access token wherever it appears in a response body (raw, JSON-escaped, percent-encoded),
   * streaming, with `*` of the same length. Default true; turn off only for an API known never to reflect requests.
   */
  redactBody?: boolean;
  /**
   * The name of the `oauth()` instance whose token the calls carry (several providers: e.g. `'github'`).
   * Default: the app's login instance (or its only one). A connection the session lacks: `401 connection_required`.
   */
  provider?: string;
}

type KeysEnum<T> = { [K in keyof Required<T>]: true };
const KEYS: KeysEnum<OAuthProxyOptions> = {
  target: true,
  methods: true,
  csrfHeader: true,
  csrfValue: true,
  timeout: true,
  maxRequestBytes: true,
  maxResponseBytes: true,
  requestHeaders: true,
  responseHeaders: true,
  headers: true,
  redactBody: true,
  provider: true,
};

export interface ResolvedProxy {
  target: URL;
  origin: string;
  basePath: string;
  methods: Set<string>;
  allow: string;
  csrfHeader: string;
  csrfValue: string;
  timeout: number | undefined;
  maxRequestBytes: number;
  maxResponseBytes: number;
  requestHeaders: Set<string>;
  responseHeaders: Set<string>;
  extra: Record<string, string>;
  redactBody: boolean;
  provider: string | undefined;
}

const positive = (name: string, v: unknown, fallback: number | undefined) => {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
    throw new ConfigError(`oauthProxy: ${name} must be a positive whole number (got ${JSON.stringify(v) ?? typeof v}).`);
  return v;
};

/** Validates and defaults the options once, at startup. */
export function resolveProxyOptions(options: OAuthProxyOptions): ResolvedProxy {
  if (!options || typeof options !== 'object')
    throw new ConfigError('oauthProxy: pass an options object, e.g. oauthProxy({ target: "https://api.example.com" }).');
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(KEYS, key)) throw new ConfigError(`oauthProxy: unknown option "${key}". Known options: ${Object.keys(KEYS).join(', ')}.`);
  }
  let target: URL;
  try {
    target = new URL(options.target);
  } catch {
    throw new ConfigError(`oauthProxy: target must be an absolute URL such as "https://api.example.com" (got ${JSON.stringify(options.target)}).`);
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') throw new ConfigError('oauthProxy: target must be an http(s) URL.');
  if (target.username || target.password || target.search || target.hash) {
    throw new ConfigError('oauthProxy: target must not contain credentials, a query or a fragment.');
  }
  const methods = new Set((options.methods ?? ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).map((m) => String(m).toUpperCase()));
  for (const m of methods) {
    if (!/^[A-Z]+$/.test(m) || m === 'CONNECT' || m === 'TRACE') throw new ConfigError(`oauthProxy: methods cannot include ${JSON.stringify(m)}.`);
  }
  const csrfHeader = (options.csrfHeader ?? 'x-csrf').toLowerCase();
  if (!/^[a-z0-9-]+$/.test(csrfHeader)) throw new ConfigError('oauthProxy: csrfHeader must be a header name such as "X-CSRF".');
  const csrfValue = options.csrfValue ?? '1';
  if (typeof csrfValue !== 'string' || csrfValue === '') throw new ConfigError('oauthProxy: csrfValue must be a non-empty string.');
  return {
    target,
    origin: target.origin,
    basePath: target.pathname.replace(/\/+$/, ''),
    methods,
    allow: [...methods].join(', '),
    csrfHeader,
    csrfValue,
    timeout: positive('timeout', options.timeout, undefined),
    maxRequestBytes: positive('maxRequestBytes', options.maxRequestBytes, 10 * 1024 * 1024)!,
    maxResponseBytes: positive('maxResponseBytes', options.maxResponseBytes, 100 * 1024 * 1024)!,
    requestHeaders: headerList('requestHeaders', options.requestHeaders ?? DEFAULT_REQUEST_HEADERS),
    responseHeaders: headerList('responseHeaders', options.responseHeaders ?? DEFAULT_RESPONSE_HEADERS),
    extra: extraHeaders(options.headers),
    redactBody: options.redactBody ?? true,
    provider: resolveProvider(options.provider),
  };
}

function resolveProvider(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[a-z][a-z0-9-]{0,31}$/.test(value)) {
    throw new ConfigError(`oauthProxy: provider must be the \`name\` of an oauth() instance, e.g. 'github' (got ${JSON.stringify(value)}).`);
  }
  return value;
}
