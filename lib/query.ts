import type { Request } from 'express';

/** The raw query string of the request (without `?`), from the URL the client sent. */
function rawQuery(req: Request): string {
  const url = req.originalUrl ?? req.url;
  const i = url.indexOf('?');
  return i === -1 ? '' : url.slice(i + 1);
}

/**
 * Parses the raw query strictly: undefined when it is longer than `maxLength` or holds invalid
 * percent-encoding. Values are always plain strings (no arrays or objects, no prototype keys).
 */
export function rawQueryParams(req: Request, maxLength: number): URLSearchParams | undefined {
  const q = rawQuery(req);
  if (q.length > maxLength) return undefined;
  for (const part of q.split('&')) {
    try {
      decodeURIComponent(part.replace(/\+/g, ' '));
    } catch {
      return undefined;
    }
  }
  return new URLSearchParams(q);
}
