import type { Request } from 'express';

/**
 * Rules 11 and 16: a proxied call (or a session read) must come from the app's own scripts. The custom
 * header (exact value) cannot be set by a cross-site form, link or image, and cross-site `fetch` cannot
 * set it without a CORS preflight the app never answers. Fetch metadata and `Origin`, when the browser
 * sends them, must say same-origin too: `Sec-Fetch-Site: none` (a typed URL, a bookmark) is refused as
 * well, since a top-level navigation cannot carry the header anyway.
 */
export function isOwnScript(req: Request, appOrigin: string, header: string, value: string): boolean {
  if (req.headers[header] !== value) return false;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = req.headers.origin;
  return origin === undefined || origin === appOrigin;
}
