import type { Response } from 'express';
import type { OAuthError } from '../errors.js';

/**
 * Proxy errors are always JSON `{ "error": code }` with `no-store`, never a redirect or a page: the caller
 * is a script. After the response headers went out, the only honest signal left is a cut connection.
 */
export function sendProxyError(res: Response, err: OAuthError, extra: Record<string, string> = {}): void {
  if (res.headersSent) return void res.destroy();
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.setHeader('Cache-Control', 'no-store');
  if (err.retryAfter !== undefined) res.setHeader('Retry-After', String(err.retryAfter));
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  res.status(err.status).json(err.toJSON());
}
