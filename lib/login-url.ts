import { createOAuthError } from './errors.js';
import type { Instance } from './instance.js';

/** Splits a `scope` value given as a string (space-separated) or an array. */
export function scopeList(scope: string | string[] | undefined): string[] {
  if (scope === undefined) return [];
  return (Array.isArray(scope) ? scope : scope.split(' ')).filter(Boolean);
}

/**
 * The path that starts a login (or connection) of `instance` mounted at `base`, asking for extra `scope`
 * (each one must be in its `allowedScopes`: an app bug otherwise, `config_invalid`) and coming back to `returnTo`.
 */
export function loginUrlOf(instance: Instance, base: string, options: { scope?: string | string[]; returnTo?: string }): string {
  const { cfg } = instance;
  const extra = scopeList(options.scope);
  const refused = extra.filter((s) => !cfg.allowedScopes.has(s));
  if (refused.length > 0) {
    throw createOAuthError(
      'config_invalid',
      `req.oauth.loginUrl(): ${refused.map((s) => JSON.stringify(s)).join(', ')} is not in the \`allowedScopes\` of '${cfg.name}'.`,
    );
  }
  const query = new URLSearchParams();
  if (extra.length > 0) query.set('scope', extra.join(' '));
  if (options.returnTo !== undefined) query.set('returnTo', options.returnTo);
  const q = query.toString();
  return `${base}${cfg.paths.login}${q ? `?${q}` : ''}`;
}
