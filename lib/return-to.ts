/** Longest `returnTo` accepted; anything longer falls back to "/". */
export const MAX_RETURN_TO = 2048;

/**
 * Validates a post-login or post-logout target (RFC 9700 §4.11, open redirectors): only a path on this app's own origin is kept;
 * anything else (absolute or protocol-relative URLs, backslashes, control characters or whitespace,
 * paths that normalize to `//host`, oversize values, non-strings) becomes `/`.
 *
 * The result is the normalized, percent-encoded path+query+fragment that the browser will resolve to the
 * same origin whatever it is.
 */
export function safeReturnTo(value: unknown, appOrigin: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_RETURN_TO) return '/';
  // Must be an absolute path, not a scheme-relative or backslash form; no control, space or format chars
  // (URL parsers strip tabs and newlines, which would turn "/\t/evil" into "//evil").
  if (value[0] !== '/' || value[1] === '/' || value[1] === '\\') return '/';
  if (/[\\\u0000-\u0020\u007f-\u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff\ufff9-\ufffb]/u.test(value)) return '/';
  let url: URL;
  try {
    url = new URL(value, appOrigin);
  } catch {
    return '/';
  }
  if (url.origin !== appOrigin) return '/';
  const out = `${url.pathname}${url.search}${url.hash}`;
  // Dot segments can normalize "/.//evil" into "//evil": what we emit must itself be a plain path.
  if (!out.startsWith('/') || out.startsWith('//') || out.includes('\\') || out.length > MAX_RETURN_TO * 3) return '/';
  return out;
}
