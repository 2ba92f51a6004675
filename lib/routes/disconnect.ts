import type { Request, Response } from 'express';
import { createOAuthError } from '../errors.js';
import type { Instance } from '../instance.js';
import { rawQueryParams } from '../query.js';
import { safeReturnTo } from '../return-to.js';
import { livePending, namespaceOf, saveSession, setNamespace } from '../session.js';
import { wantsJson } from '../wants-json.js';
import { endConnection } from './end-connection.js';
import { isSameOrigin } from './logout.js';

/**
 * `POST {disconnect}` (connect instances; same-origin rules as logout): revokes this provider's tokens
 * (best effort, short deadline), deletes its record and its session data (its pending logins stay), and
 * keeps the login and the other connections. Redirects to a validated `returnTo` (default `/`); XHR
 * callers get 204.
 */
export async function handleDisconnect(instance: Instance, req: Request, res: Response): Promise<void> {
  const { cfg } = instance;
  if (!isSameOrigin(req, cfg.appOrigin)) throw createOAuthError('cross_site_request', 'Cross-site disconnect refused.');
  const sreq = instance.session(req);
  const data = namespaceOf(sreq.session, cfg.sessionKey);
  await endConnection(instance, sreq.sessionID, data?.user?.sub);
  if (data) {
    const tx = livePending(data);
    setNamespace(sreq.session, cfg.sessionKey, Object.keys(tx).length > 0 ? { tx } : undefined);
    await saveSession(sreq, cfg.storeTimeout);
  }
  if (wantsJson(req)) return void res.status(204).end();
  const params = rawQueryParams(req, 4096);
  const returnTo = params?.getAll('returnTo').length === 1 ? safeReturnTo(params.get('returnTo'), cfg.appOrigin) : '/';
  res.redirect(302, returnTo);
}
