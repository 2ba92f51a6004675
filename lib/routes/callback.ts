import type { Request, Response } from 'express';
import type { TokenSet } from '../token-response.js';
import { sha256 } from '../crypto.js';
import { CallbackError, OAuthError, ProviderError, StoreUnavailableError, providerNotLoaded, safeOAuthErrorCode } from '../errors.js';
import type { Instance } from '../instance.js';
import { rawQueryParams } from '../query.js';
import {
  TX_TTL_MS,
  defaultSameSite,
  livePending,
  regenerateSession,
  reloadSession,
  saveSession,
  type PendingLogin,
  type SessionRequest,
} from '../session.js';
import { markFreshLogin } from '../session-guard.js';
import { sessionTag } from '../tokens.js';

/** Parameters of an authorization response that may appear at most once. */
const SINGLE = ['state', 'code', 'iss', 'error', 'error_description', 'error_uri', 'session_state'];
/** A callback carrying tokens is an implicit-flow or injection attempt: refused. */
const FORBIDDEN = ['access_token', 'id_token', 'refresh_token', 'token'];
const MAX_QUERY = 8192;
const MAX_PARAM = 2048;

const invalid = (why: string) => new CallbackError(`Login failed (${why}). Please try again.`, 'callback_invalid', 400, why.replace(/ /g, '_'));

/** Instances that already warned about a missing refresh token (the warning is given once). */
const warnedNoRefresh = new WeakSet<Instance>();

/** Whether the login asked for offline access (a refresh token): `offline_access`, or Google-style `access_type=offline`. */
function offlineRequested(instance: Instance): boolean {
  const { scope, authorizationParams } = instance.cfg;
  return scope.split(' ').includes('offline_access') || authorizationParams.access_type === 'offline';
}

/** A fixed identifier of why a callback failed, for the log line and the `login_failed` event. */
function failureReason(err: unknown): string {
  if (err instanceof CallbackError) return err.reason;
  if (err instanceof ProviderError) return err.oauthError ?? err.code;
  if (err instanceof OAuthError) return err.code;
  return 'unexpected_error';
}

/**
 * `GET {callback}`: validates the authorization response completely before any network call, in the
 * order of RFC 9700 §4.5.3 and RFC 9207 §2.4 (parse, find the transaction by state, consume it, check `iss`, then `error`, then
 * `code`), exchanges the code, regenerates the session id, stores the tokens encrypted under the new id,
 * waits for every write, and only then redirects to the transaction's `returnTo`.
 */
export async function handleCallback(instance: Instance, req: Request, res: Response): Promise<void> {
  try {
    await completeLogin(instance, req, res);
  } catch (err) {
    // Every failed callback leaves one log line and one event, with a reason and never a value.
    const reason = failureReason(err);
    instance.cfg.logger.warn(`login failed at the callback: ${reason}`, { reason, status: err instanceof OAuthError ? err.status : 500 });
    instance.events.emit('login_failed', { reason });
    throw err;
  }
}

async function completeLogin(instance: Instance, req: Request, res: Response): Promise<void> {
  const { cfg, server, tokens } = instance;
  const sreq = instance.session(req);
  const started = Date.now();

  // 1. Parse the raw query strictly.
  const params = rawQueryParams(req, MAX_QUERY);
  if (!params) throw invalid('malformed query');
  for (const name of SINGLE) if (params.getAll(name).length > 1) throw invalid(`repeated ${name}`);
  for (const name of FORBIDDEN) if (params.has(name)) throw invalid('tokens in the callback URL');
  for (const [, value] of params) if (value.length > MAX_PARAM) throw invalid('oversized parameter');
  const state = params.get('state');
  if (!state) throw invalid('missing state');
  // Without provider metadata the login cannot finish now: answer 503 before consuming the transaction,
  // so the same callback can be retried.
  if (!server.isLoaded) throw providerNotLoaded();

  // 2. Find the transaction this browser started, by a hash of the state.
  const data = sreq.session.oauth;
  const pending = livePending(data);
  const key = sha256(state);
  const tx = pending[key];
  if (!tx || !data) throw invalid('unknown or expired state');

  // 3. Consume it (single use): an atomic claim in the store, so two concurrent requests with the same
  // callback cannot both redeem the code (the claim outlives the transaction). A successful login replaces
  // the session below; a failed one removes the transaction from the session too (see forgetTransaction).
  if (!(await tokens.claimOnce(`tx:${key}`, TX_TTL_MS))) throw invalid('state already used');
  const wasLoggedIn = data.user !== undefined;
  try {
    return await exchangeAndStore(instance, req, res, { params, state, key, tx, wasLoggedIn, started });
  } catch (err) {
    await forgetTransaction(sreq, key, cfg.storeTimeout);
    throw err;
  }
}

/** After a failed callback, the used transaction leaves the session as well (best effort: the claim already refuses it). */
async function forgetTransaction(sreq: SessionRequest, key: string, storeTimeout: number): Promise<void> {
  const data = sreq.session?.oauth;
  if (!data?.tx?.[key]) return;
  delete data.tx[key];
  await saveSession(sreq, storeTimeout).catch(() => {});
}

async function exchangeAndStore(
  instance: Instance,
  req: Request,
  res: Response,
  c: { params: URLSearchParams; state: string; key: string; tx: PendingLogin; wasLoggedIn: boolean; started: number },
): Promise<void> {
  const { cfg, server, tokens, events } = instance;
  const sreq = instance.session(req);
  const { params, state, key, tx, started } = c;

  // 4. RFC 9207: the response must come from the issuer this login was sent to.
  const iss = params.get('iss');
  if (iss !== null ? iss !== tx.issuer : server.issParameterSupported()) throw invalid('issuer mismatch');

  // 5. Only now look at an error from the provider. Its description is never reflected.
  const error = params.get('error');
  if (error !== null) {
    const reason = safeOAuthErrorCode(error);
    if (error === 'access_denied') {
      if (cfg.accessDeniedRedirect) {
        cfg.logger.warn('login failed at the callback: access_denied', { reason, status: 302 });
        events.emit('login_failed', { reason });
        await forgetTransaction(sreq, key, cfg.storeTimeout);
        return void res.redirect(302, cfg.accessDeniedRedirect);
      }
      throw new CallbackError('Access was denied at the identity provider.', 'access_denied', 403);
    }
    const unavailable = error === 'server_error' || error === 'temporarily_unavailable';
    throw new CallbackError(
      'The identity provider could not complete the login. Please try again.',
      'authorization_failed',
      unavailable ? 502 : 400,
      reason,
    );
  }

  // 6. Then require a code.
  const code = params.get('code');
  if (!code) throw invalid('missing code');

  let tokenSet: TokenSet;
  try {
    tokenSet = await server.exchangeCode(iss === null ? { code, state } : { code, state, iss }, {
      state,
      codeVerifier: tx.verifier,
      nonce: tx.nonce,
    });
  } catch (err) {
    // A code that does not redeem (replayed, injected, PKCE mismatch) is a bad callback, not a provider fault.
    if (err instanceof ProviderError && err.oauthError === 'invalid_grant') throw invalid('code rejected');
    throw err;
  }
  if (!tokenSet.refresh_token && offlineRequested(instance) && !warnedNoRefresh.has(instance)) {
    warnedNoRefresh.add(instance);
    cfg.logger.warn(
      "the provider returned no refresh token although offline access was requested: each login will end when its access token expires. Many providers grant offline access only on consent: add authorizationParams: { prompt: 'consent' } (Google also needs access_type: 'offline'; its preset sets both), and check that the client may use the refresh_token grant.",
    );
  }

  // 7. With `fetchUserInfo`, the userinfo claims, before anything is written: a failure fails the whole login
  // (no session, tokens revoked), so an app never sees a login without the claims it asked for.
  let userinfo: Record<string, unknown> = {};
  if (cfg.fetchUserInfo) {
    try {
      userinfo = await server.userInfo(tokenSet.access_token, tokenSet.sub, tokenSet.dpop);
    } catch (err) {
      void server.revokeQuietly(tokenSet.refresh_token, tokenSet.access_token);
      throw err;
    }
  }

  // 8. New session id (fixation defence); pending logins of other tabs (re-read: one may have started
  // during the exchange) move along; the old session's tokens go once the new login is stored.
  const oldSid = sreq.sessionID;
  try {
    await reloadSession(sreq, cfg.storeTimeout);
    const otherTabs = livePending(sreq.session.oauth);
    delete otherTabs[key];
    await regenerateSession(sreq, cfg.storeTimeout);
    defaultSameSite(sreq);
    sreq.session.oauth = {
      tx: otherTabs,
      user: { ...userinfo, ...(tokenSet.claims ?? {}), ...(tokenSet.sub ? { sub: tokenSet.sub } : {}) },
      loginAt: Date.now(),
    };
    await tokens.write(sreq.sessionID, tokens.buildRecord(tokenSet));
    // The record was written just above, by this request: the logout guard need not read it back.
    markFreshLogin(sreq.session);
    await saveSession(sreq, cfg.storeTimeout);
  } catch (err) {
    // The tokens could not be kept: do not leave a live grant behind.
    void server.revokeQuietly(tokenSet.refresh_token, tokenSet.access_token);
    throw err instanceof OAuthError ? err : new StoreUnavailableError('Could not store the login.', err);
  }
  // Logging in over a live login: its record goes (best effort, not awaited: the old session id no longer exists).
  if (c.wasLoggedIn) void tokens.remove(oldSid).catch(() => {});
  events.emit('login', { session: sessionTag(sreq.sessionID), sub: tokenSet.sub, durationMs: Date.now() - started });
  res.redirect(302, tx.returnTo);
}
