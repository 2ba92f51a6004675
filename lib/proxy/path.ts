/**
 * API proxy paths (SECURITY.md, rule 16; RFC 3986 §3.3 and §5.2.4): the browser chooses only a path suffix under the target's base path. Each segment is decoded
 * once and refused when the decoded form could mean anything but one plain segment to the upstream:
 * a dot segment, an encoded separator, a backslash, a control character, or something still
 * percent-encoded (double encoding, which a second decoder upstream would turn into one of the above).
 */

// Raw characters never accepted in the suffix: backslash, NUL and other controls, and space.
const RAW_REFUSED = /[\\\u0000-\u0020\u007f]/;
// A segment of these characters only is plain as it stands (no dot, no percent, no separator): no check more.
const PLAIN_SEGMENT = /^[A-Za-z0-9_~-]+$/;
// After one decode: separators, controls, and anything still encoded (`%2e` from `%252e`).
const DECODED_REFUSED = /[/\\\u0000-\u001f\u007f]|%[0-9a-f]{2}/i;

/**
 * Maps the browser's path suffix (raw, as received, without query) under `basePath` (no trailing slash).
 * Returns the upstream path, or `undefined` when the suffix must be refused (400 `invalid_path`).
 *
 * @example
 * ```ts
 * mapPath('/v1', '/users/me'); // '/v1/users/me'
 * mapPath('/v1', '/%2e%2e/admin'); // undefined
 * ```
 */
export function mapPath(basePath: string, suffix: string): string | undefined {
  if (suffix === '' || suffix === '/') return basePath === '' ? '/' : suffix === '' ? basePath : `${basePath}/`;
  if (suffix[0] !== '/' || RAW_REFUSED.test(suffix)) return undefined;
  const segments = suffix.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const raw = segments[i]!;
    // An empty segment (`//`) is refused, except the last one: a trailing slash.
    if (raw === '') {
      if (i === segments.length - 1) continue;
      return undefined;
    }
    if (PLAIN_SEGMENT.test(raw)) continue;
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (DECODED_REFUSED.test(decoded)) return undefined;
    // Servlet-style path parameters (`..;x`) and trailing dots or spaces (`.. `, `...`) are dot segments to
    // some servers once normalised: refused as well.
    const bare = decoded.split(';')[0]!.replace(/[\s.]+$/u, (m) => (m.includes('.') ? '.' : ''));
    if (bare === '' || bare === '.' || bare === '..' || /^\.+$/.test(decoded.split(';')[0]!.trim())) return undefined;
  }
  return `${basePath}${suffix}`;
}
