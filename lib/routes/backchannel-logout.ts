import type { Request, Response } from 'express';
import { LogoutTokenError, LogoutTokenVerifier } from '../backchannel/verify.js';
import { sha256 } from '../crypto.js';
import { OAuthError, StoreUnavailableError, createOAuthError, providerNotLoaded } from '../errors.js';
import type { Instance } from '../instance.js';
import type { IndexEntry } from '../sessions/session-index.js';
import { endSessions } from '../sessions/end-sessions.js';

/** Largest form body accepted (Back-Channel Logout 1.0 §2.5: one `logout_token` parameter). */
const MAX_BODY = 16 * 1024;

const verifiers = new WeakMap<Instance, LogoutTokenVerifier>();

/** Reads the raw form body (capped, bounded in time); a body parser that already ran is honoured. */
function readBody(req: Request, timeoutMs: number): Promise<string> {
  const parsed = (req as { body?: unknown }).body;
  if (req.readableEnded || (parsed !== undefined && typeof parsed === 'object' && parsed !== null && Object.keys(parsed).length > 0)) {
    // express.urlencoded() ran first: rebuild the form from what it kept (a repeated key became an array).
    if (typeof parsed !== 'object' || parsed === null) return Promise.reject(new LogoutTokenError('body_unreadable'));
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(parsed)) {
      if (typeof v !== 'string') throw new LogoutTokenError('repeated_parameter');
      form.append(k, v);
    }
    return Promise.resolve(form.toString());
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY) return Promise.reject(new LogoutTokenError('oversized'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => finish(new LogoutTokenError('body_timeout')), timeoutMs);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      if (err) {
        req.resume(); // drain and drop the rest
        return reject(err);
      }
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) return finish(new LogoutTokenError('oversized'));
      chunks.push(c);
    };
    const onEnd = () => finish();
    const onError = () => finish(new LogoutTokenError('body_unreadable'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

function isForm(req: Request): boolean {
  const type = String(req.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase();
  return type === 'application/x-www-form-urlencoded';
}

/** The one `logout_token` of the form, or a refusal. */
function logoutToken(body: string): string {
  let form: URLSearchParams;
  try {
    form = new URLSearchParams(body);
  } catch {
    throw new LogoutTokenError('malformed_body');
  }
  const values = form.getAll('logout_token');
  if (values.length !== 1) throw new LogoutTokenError(values.length === 0 ? 'missing_logout_token' : 'repeated_parameter');
  return values[0]!;
}

/**
 * `POST {backchannelLogout}` (OpenID Connect Back-Channel Logout 1.0): the provider tells us a user's session
 * ended. The body is read here (form only, 16 KB cap, exactly one `logout_token`); the token is verified
 * (see {@link LogoutTokenVerifier}); its `jti` is claimed once in the store (replays refused); then every
 * session of its `sid` (or of its `sub`, when it has no `sid`) ends: tokens revoked, records deleted,
 * sessions destroyed. 200 with `Cache-Control: no-store`; any refusal 400 `{"error":"invalid_request"}`
 * with nothing deleted and nothing from the request echoed; a store or key-fetch failure 503.
 */
export async function handleBackchannelLogout(instance: Instance, req: Request, res: Response): Promise<void> {
  const { cfg, server, tokens, events } = instance;
  const options = cfg.backchannelLogout!;
  try {
    if (req.method !== 'POST') throw new LogoutTokenError('method');
    if (!isForm(req)) throw new LogoutTokenError('content_type');
    const token = logoutToken(await readBody(req, cfg.httpTimeout));
    if (!server.isLoaded) throw providerNotLoaded();
    let verifier = verifiers.get(instance);
    if (!verifier) verifiers.set(instance, (verifier = new LogoutTokenVerifier(cfg, server)));
    const claims = await verifier.verify(token, options.maxTokenAge);

    // Single use (§2.6 step 9 RECOMMENDS it): claimed only once the token is known to be genuine, for as long as it could be accepted.
    const ttlMs = Math.max(60_000, claims.rememberUntil * 1000 - Date.now());
    if (!(await tokens.claimOnce(`bcl:${sha256(`${claims.iss}\0${claims.jti}`)}`, ttlMs))) throw new LogoutTokenError('replayed');

    const index = instance.sessions.index;
    let sessions: Map<string, IndexEntry>;
    if (claims.sid !== undefined) {
      sessions = await index.get('sid', index.id('sid', claims.sid));
      // With both, only sessions of that user in that provider session (§2.4).
      if (claims.sub !== undefined) {
        const subId = index.id('sub', claims.sub);
        for (const [id, e] of sessions) if (e.sub !== subId) sessions.delete(id);
      }
    } else {
      sessions = await index.get('sub', index.id('sub', claims.sub!));
    }
    if (!instance.sessions.store && sessions.size > 0) {
      cfg.logger.warn('back-channel logout: the session store has not been seen yet; token records are deleted, sessions stay until they expire');
    }
    const ended = await endSessions(instance, sessions, 'backchannel', { revoke: options.revokeTokens });
    cfg.logger.info?.('back-channel logout', { sessions: ended, by: claims.sid !== undefined ? 'sid' : 'sub' });
    res.status(200).end();
  } catch (err) {
    if (err instanceof LogoutTokenError && !err.transient) {
      cfg.logger.warn(`back-channel logout refused: ${err.reason}`, { reason: err.reason });
      events.emit('backchannel_logout_failed', { provider: cfg.name, reason: err.reason });
      if (req.method !== 'POST') res.setHeader('Allow', 'POST');
      // Back-Channel Logout 1.0 §2.8: 400 on any failure; a fixed body, nothing of the request echoed.
      return void res.status(400).json({ error: 'invalid_request', error_description: 'The logout token was not accepted.' });
    }
    const failure =
      err instanceof OAuthError
        ? err
        : err instanceof LogoutTokenError
          ? createOAuthError('provider_unavailable', "The provider's keys could not be fetched.")
          : new StoreUnavailableError('Back-channel logout failed.', err);
    const reason = err instanceof LogoutTokenError ? err.reason : failure.code;
    cfg.logger.warn(`back-channel logout failed: ${reason}`, { reason, status: failure.status });
    events.emit('backchannel_logout_failed', { provider: cfg.name, reason });
    if (failure.retryAfter !== undefined) res.setHeader('Retry-After', String(failure.retryAfter));
    res.status(failure.status).json({ error: failure.status === 400 ? 'invalid_request' : 'temporarily_unavailable' });
  }
}
