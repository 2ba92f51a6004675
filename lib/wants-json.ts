import type { Request } from 'express';

/** True for fetch/XHR/API callers, who get JSON errors and 204s instead of redirects and pages. */
export function wantsJson(req: Request): boolean {
  const h = req.headers;
  if (typeof h['x-requested-with'] === 'string' && h['x-requested-with'].toLowerCase() === 'xmlhttprequest') return true;
  const dest = h['sec-fetch-dest'];
  if (dest === 'empty') return true;
  if (dest === 'document' || dest === 'iframe') return false;
  const accept = h.accept;
  if (!accept) return false;
  return req.accepts(['html', 'json']) === 'json';
}
