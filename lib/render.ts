import type { Request, Response } from 'express';
import { ConnectionRequiredError, type OAuthError } from './errors.js';
import type { Instance } from './instance.js';
import { stateOf } from './request-state.js';
import { safeReturnTo } from './return-to.js';
import { wantsJson } from './wants-json.js';

const TITLES: Record<number, string> = {
  400: 'Login failed',
  401: 'Login required',
  403: 'Forbidden',
  405: 'Method not allowed',
  429: 'Too many logins in progress',
  502: 'The identity provider answered badly',
  503: 'Temporarily unavailable',
  504: 'The identity provider did not answer in time',
};

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The login URL for this request, with `returnTo` set to the current path (GET) or `/`. */
function loginRedirect(instance: Instance, req: Request): string {
  const target = req.method === 'GET' || req.method === 'HEAD' ? safeReturnTo(req.originalUrl, instance.cfg.appOrigin) : '/';
  const mount = stateOf(req)?.base ?? '';
  const base = `${mount}${instance.cfg.paths.login}`;
  return target === '/' ? base : `${base}?returnTo=${encodeURIComponent(target)}`;
}

/**
 * Sends an {@link OAuthError}: `login_required` redirects pages to login and gives JSON callers
 * `401 {"error":"login_required"}`; every other error is JSON `{ "error": code }` or a short HTML page
 * with a link to log in again. Nothing from the provider is echoed.
 */
export function renderOAuthError(instance: Instance | undefined, err: OAuthError, req: Request, res: Response): void {
  if (res.headersSent) return;
  if (err.retryAfter !== undefined) res.setHeader('Retry-After', String(err.retryAfter));
  res.setHeader('Cache-Control', 'no-store');
  const json = wantsJson(req);
  const page = !json && (req.method === 'GET' || req.method === 'HEAD');
  if (err.code === 'login_required' && page && instance) {
    return void res.redirect(302, loginRedirect(instance, req));
  }
  if (err instanceof ConnectionRequiredError && page) {
    const target = safeReturnTo(req.originalUrl, instance?.cfg.appOrigin ?? 'http://invalid');
    return void res.redirect(302, target === '/' ? err.loginUrl : `${err.loginUrl}?returnTo=${encodeURIComponent(target)}`);
  }
  res.status(err.status);
  if (json) return void res.json(err.toJSON());
  const loginPath = `${stateOf(req)?.base ?? ''}${instance?.cfg.paths.login ?? '/oauth/login'}`;
  const title = TITLES[err.status] ?? 'Error';
  const text = err.status === 400 ? 'Login failed, please try again.' : err.expose ? err.message : 'Something went wrong, please try again.';
  res
    .type('html')
    .send(
      `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1><p>${escape(text)}</p><p><a href="${escape(loginPath)}">Log in</a></p></body></html>`,
    );
}
