import { InsufficientScopeError } from './errors.js';
import type { Instance } from './instance.js';

/** A scope value as RFC 6749 §3.3 allows it (scope-tokens separated by single spaces), bounded. */
const SCOPE = /^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/;

/**
 * Reads an RFC 6750 §3 `WWW-Authenticate` header: the `scope` a `Bearer` challenge with
 * `error="insufficient_scope"` asks for (`''` when it names none), or `undefined` when the header is not
 * such a challenge. Only a plain scope list is kept: nothing else the API sent is passed on.
 */
export function insufficientScopeOf(header: unknown): string | undefined {
  const value = Array.isArray(header) ? header.join(', ') : header;
  if (typeof value !== 'string' || value.length > 4096 || !/^\s*bearer\b/i.test(value)) return undefined;
  const params = new Map<string, string>();
  for (const m of value.matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
    params.set(m[1]!.toLowerCase(), (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1'));
  }
  if (params.get('error') !== 'insufficient_scope') return undefined;
  const scope = params.get('scope') ?? '';
  return scope.length <= 512 && SCOPE.test(scope) ? scope : '';
}

/**
 * The error for an API's `403 insufficient_scope` answer to `instance`'s token: which scope to request, and
 * the login URL that requests it when every scope is in `allowedScopes` (otherwise the plain login URL).
 */
export function insufficientScopeError(instance: Instance, loginUrl: string, header: unknown, cause: unknown): InsufficientScopeError | undefined {
  const scope = insufficientScopeOf(header);
  if (scope === undefined) return undefined;
  const wanted = scope.split(' ').filter(Boolean);
  const askable = wanted.length > 0 && wanted.every((s) => instance.cfg.allowedScopes.has(s));
  const url = askable ? `${loginUrl}?scope=${encodeURIComponent(wanted.join(' '))}` : loginUrl;
  return new InsufficientScopeError(instance.cfg.name, scope || undefined, url, cause);
}
