import type { Request, Response } from 'express';
import type { TokenSet } from '../token-response.js';
import { sha256 } from '../crypto.js';
import { CallbackError, OAuthError, ProviderError, StoreUnavailableError, providerNotLoaded, safeOAuthErrorCode } from '../errors.js';
import type { Instance } from '../instance.js';
import { rawQueryParams } from '../query.js';
import {
  TX_TTL_MS,
  defaultSameSite,
  isLoggedIn,
  isOAuthField,
  livePending,
  namespaceOf,
  regenerateSessionAside,
  reloadSession,
  saveSession,
  setNamespace,
  type OAuthSessionData,
  type PendingLogin,
  type SessionRequest,
} from '../session.js';
import { markFreshLogin, unmarkFreshLogin } from '../session-guard.js';
import { sessionTag } from '../tokens.js';
import { stateOf } from '../request-state.js';
import { checkRequireLogin } from '../require-login.js';
import { endConnection } from './end-connection.js';

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
    instance.events.emit('login_failed', { provider: instance.cfg.name, reason });
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

  // 2. Find the transaction this browser started, by a hash of the state, among this instance's own: a
  // state of another provider of the app is unknown here (and stays pending there).
  const data = namespaceOf(sreq.session, cfg.sessionKey);
  const pending = livePending(data);
  const key = sha256(state);
  const tx = pending[key];
  if (!tx || !data) throw invalid('unknown or expired state');
  const group = stateOf(req)?.group;
  // A connection that needs a login finds none (logged out in another tab meanwhile): refused before the
  // transaction is consumed or a token requested; nothing else of the session changes.
  await checkRequireLogin(instance, req, group);

  // 3. Consume it (single use): an atomic claim in the store, so two concurrent requests with the same
  // callback cannot both redeem the code (the claim outlives the transaction). A successful login replaces
  // the session below; a failed one removes the transaction from the session too (see forgetTransaction).
  if (!(await tokens.claimOnce(`tx:${key}`, TX_TTL_MS))) throw invalid('state already used');
  const wasLoggedIn = data.user !== undefined;
  try {
    return await exchangeAndStore(instance, req, res, { params, state, key, tx, wasLoggedIn, started });
  } catch (err) {
    await forgetTransaction(sreq, cfg.sessionKey, key, cfg.storeTimeout);
    throw err;
  }
}

/** After a failed callback, the used transaction leaves the session as well (best effort: the claim already refuses it). */
async function forgetTransaction(sreq: SessionRequest, sessionKey: string, key: string, storeTimeout: number): Promise<void> {
  const data = namespaceOf(sreq.session, sessionKey);
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
        events.emit('login_failed', { provider: cfg.name, reason });
        await forgetTransaction(sreq, cfg.sessionKey, key, cfg.storeTimeout);
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

  // 8. New session id (fixation defence), for both roles. What moves to it: the pending logins of other
  // tabs (re-read: one may have started during the exchange), the other instances' data (their pending
  // logins, and their connections unless another user just logged in), the app's own fields unless
  // `keepSessionData: false`; the other instances' records follow under the new id (re-sealed: a record is
  // bound to its session id). The old session's records go once the new login is stored.
  const oldSid = sreq.sessionID;
  const oldIdx = namespaceOf(sreq.session, cfg.sessionKey)?.idx;
  const others = stateOf(req)?.group?.others(instance) ?? [];
  const user = { ...userinfo, ...(tokenSet.claims ?? {}), ...(tokenSet.sub ? { sub: tokenSet.sub } : {}) };
  const moved: typeof others = [];
  const dropped: typeof others = [];
  /** This login's session index entries, once written (removed again if the login fails after). */
  let indexed: Awaited<ReturnType<typeof instance.sessions.index.add>> | undefined;
  /** The old session, as re-read: the request goes back to it when it could not be destroyed. */
  let oldSession: SessionRequest['session'] | undefined;
  let oldKept = false;
  try {
    await reloadSession(sreq, cfg.storeTimeout);
    oldSession = sreq.session;
    const before = sreq.session as unknown as Record<string, unknown>;
    const otherTabs = livePending(namespaceOf(before, cfg.sessionKey));
    delete otherTabs[key];
    const previous = cfg.role === 'login' ? namespaceOf(before, cfg.sessionKey) : undefined;
    const previousSub = previous?.user?.sub;
    // Another user logging in over a logged-in session inherits nothing of the previous one: not its
    // connections, not the app's fields (derived from that user). Without a `sub` to compare (plain OAuth
    // 2.0 providers), any login over a live login counts as another user.
    const switchedUser = isLoggedIn(previous) && !(previousSub !== undefined && previousSub === tokenSet.sub);
    const carried: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(before)) {
      if (k === 'cookie' || k === cfg.sessionKey) continue;
      if (isOAuthField(k)) carried[k] = switchedUser ? { tx: livePending(v as OAuthSessionData) } : v;
      else if (cfg.keepSessionData && !switchedUser) carried[k] = v;
    }
    // The old session's destroy runs beside the writes below and is awaited with them, before the save.
    const { destroyed } = await regenerateSessionAside(sreq, cfg.storeTimeout);
    defaultSameSite(sreq);
    Object.assign(sreq.session, carried);
    const mine: OAuthSessionData = { tx: otherTabs, user, loginAt: Date.now() };
    if (tx.extraScopes) mine.extraScopes = tx.extraScopes;
    setNamespace(sreq.session, cfg.sessionKey, mine);
    const record = tokens.buildRecord(tokenSet);
    if (record.scope === undefined && (cfg.scope || tx.extraScopes)) {
      record.scope = [...new Set([...cfg.scope.split(' '), ...(tx.extraScopes ?? [])])].filter(Boolean).join(' ');
    }
    // The record and the session index (back-channel logout, auth.sessions) are written side by side, and
    // beside the old session's destroy (one round trip, not three), all before the session is saved: a
    // login is never live unindexed, without its record, or while its old session id still works. A
    // failure of any undoes the login (below), once all three have settled: the undo must not run before
    // a write it undoes.
    const newSid = sreq.sessionID;
    const [gone, written, added] = await Promise.allSettled([
      destroyed,
      tokens.write(newSid, record),
      instance.sessions.index.add(newSid, {
        sub: tokenSet.sub,
        sid: tokenSet.sid,
        at: mine.loginAt!,
        userAgent: req.headers['user-agent'],
        ttlMs: instance.sessions.index.ttlMs(tokens.ttlOf(record), sreq.session.cookie.maxAge),
      }),
    ]);
    if (added.status === 'fulfilled') indexed = added.value;
    oldKept = gone.status === 'rejected';
    for (const r of [gone, written, added]) if (r.status === 'rejected') throw r.reason;
    const idx = indexed!;
    if (idx.sub || idx.sid) mine.idx = idx;
    for (const other of others) {
      if (!isLoggedIn(namespaceOf(before, other.cfg.sessionKey))) continue;
      if (switchedUser) {
        dropped.push(other);
        continue;
      }
      const loaded = await other.tokens.read(oldSid);
      if (loaded) {
        await other.tokens.write(sreq.sessionID, loaded.record);
        moved.push(other);
      } else {
        setNamespace(sreq.session, other.cfg.sessionKey, { tx: livePending(namespaceOf(before, other.cfg.sessionKey)) });
      }
    }
    // The record was written just above, by this request: the logout guard need not read it back.
    markFreshLogin(sreq.session);
    await saveSession(sreq, cfg.storeTimeout);
  } catch (err) {
    // The tokens could not be kept: do not leave a live grant behind (the old session's records stay as they were),
    // nor a session that express-session's end-of-request save would store as logged in.
    void server.revokeQuietly(tokenSet.refresh_token, tokenSet.access_token);
    const newSid = sreq.sessionID;
    if (newSid !== oldSid) {
      unmarkFreshLogin(sreq.session);
      setNamespace(sreq.session, cfg.sessionKey, undefined);
      for (const other of others) setNamespace(sreq.session, other.cfg.sessionKey, undefined);
      void tokens.remove(newSid).catch(() => {});
      if (indexed) void instance.sessions.index.remove(newSid, indexed).catch(() => {});
      for (const other of moved) void other.tokens.remove(newSid).catch(() => {});
      // The old session could not be destroyed: the request goes on with it, as if no new id had been made
      // (the login never happened; nothing of the old session is lost, and no second session appears).
      if (oldKept && oldSession) {
        (sreq as { sessionID: string }).sessionID = oldSid;
        sreq.session = oldSession;
      }
    }
    throw err instanceof OAuthError ? err : new StoreUnavailableError('Could not store the login.', err);
  }
  // Logging in over a live login: its record goes (best effort, not awaited: the old session id no longer exists).
  if (c.wasLoggedIn) {
    void tokens.remove(oldSid).catch(() => {});
    void instance.sessions.index.remove(oldSid, oldIdx);
  }
  for (const other of moved) void other.tokens.remove(oldSid).catch(() => {});
  for (const other of dropped) void endConnection(other, oldSid, undefined).catch(() => {});
  events.emit('login', { provider: cfg.name, session: sessionTag(sreq.sessionID), sub: tokenSet.sub, durationMs: Date.now() - started });
  res.redirect(302, tx.returnTo);
}
