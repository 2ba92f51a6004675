import { ConfigError } from '../errors.js';

/** Request headers passed from the browser to the upstream by default. */
export const DEFAULT_REQUEST_HEADERS: readonly string[] = [
  'accept',
  'accept-language',
  'content-type',
  'content-language',
  'range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  'cache-control',
];

/** Response headers passed from the upstream to the browser by default. */
export const DEFAULT_RESPONSE_HEADERS: readonly string[] = [
  'content-type',
  'content-language',
  'content-disposition',
  'content-range',
  'accept-ranges',
  'cache-control',
  'etag',
  'last-modified',
  'expires',
  'vary',
  'retry-after',
];

/**
 * Never forwarded, whatever the allowlists say: credentials (the browser's cookie and authorization,
 * the upstream's cookies), hop-by-hop headers (RFC 9110 §7.6.1) and framing, which the proxy sets itself,
 * and `location` (redirects are not followed, and a browser must not follow one to the API either).
 */
const NEVER = new Set([
  'cookie',
  'cookie2',
  'authorization',
  'proxy-authorization',
  // DPoP proofs are signed here, per request; the nonce is the proxy's business (RFC 9449 §7, §9).
  'dpop',
  'dpop-nonce',
  'proxy-authenticate',
  'set-cookie',
  'set-cookie2',
  'host',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'content-encoding',
  'accept-encoding',
  'expect',
  'location',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'http2-settings',
]);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** Validates an allowlist option at startup: lower-cased header names, none of the forbidden ones. */
export function headerList(option: string, list: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const name of list) {
    const n = typeof name === 'string' ? name.toLowerCase() : '';
    if (!TOKEN.test(n)) throw new ConfigError(`oauthProxy: ${option} holds ${JSON.stringify(name)}, which is not a header name.`);
    if (NEVER.has(n)) {
      throw new ConfigError(`oauthProxy: ${option} cannot include "${n}": credentials, hop-by-hop and framing headers are never forwarded.`);
    }
    out.add(n);
  }
  return out;
}

/** Validates `headers` (extra upstream headers) at startup. */
export function extraHeaders(value: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value ?? {})) {
    const n = k.toLowerCase();
    headerList('headers', [n]);
    if (typeof v !== 'string' || /[\r\n\0]/.test(v)) throw new ConfigError(`oauthProxy: headers["${k}"] must be a string without line breaks.`);
    out[n] = v;
  }
  return out;
}

/** Headers named by `Connection` are hop-by-hop too, even when an allowlist names them. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const joined = Array.isArray(value) ? value.join(',') : value;
  return new Set(joined.split(',').map((s) => s.trim().toLowerCase()));
}

/** The allowed headers of an incoming message (`IncomingMessage.headers`), as a fresh object. */
export function pickHeaders(headers: Record<string, string | string[] | undefined>, allowed: Set<string>): Record<string, string | string[]> {
  const hop = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name of allowed) {
    const v = headers[name];
    if (v === undefined || hop?.has(name)) continue;
    out[name] = v;
  }
  return out;
}
