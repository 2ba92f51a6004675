import type { Request, Response } from 'express';
import { calculatePKCECodeChallenge, randomPKCECodeVerifier } from 'openid-client';
import { randomToken, sha256 } from '../crypto.js';
import { safeReturnTo } from '../return-to.js';
import { MAX_PENDING, livePending, saveSession, type PendingLogin } from '../session.js';
import type { Instance } from '../instance.js';
import { rawQueryParams } from '../query.js';

/**
 * `GET {login}[?returnTo=/path]`: creates a login transaction (state, PKCE S256, nonce), keeps it in the
 * session under a hash of the state, waits for the session to be saved, then redirects to the provider.
 * Several tabs may have logins pending at once (the {@link MAX_PENDING} newest are kept).
 */
export async function handleLogin(instance: Instance, req: Request, res: Response): Promise<void> {
  const { cfg, server } = instance;
  const sreq = instance.session(req);
  const config = await instance.providerConfig();

  const params = rawQueryParams(req, 4096);
  const returnToValues = params?.getAll('returnTo') ?? [];
  const returnTo = returnToValues.length === 1 ? safeReturnTo(returnToValues[0], cfg.appOrigin) : '/';

  const state = randomToken(32);
  const verifier = randomPKCECodeVerifier();
  const nonce = cfg.openid ? randomToken(32) : undefined;
  const pending: PendingLogin = { verifier, issuer: server.issuer, returnTo, createdAt: Date.now() };
  if (nonce) pending.nonce = nonce;

  const original = sreq.session.oauth === undefined ? undefined : structuredClone(sreq.session.oauth);
  const data = (sreq.session.oauth ??= {});
  const tx = livePending(data);
  tx[sha256(state)] = pending;
  const entries = Object.entries(tx)
    .sort(([, a], [, b]) => b.createdAt - a.createdAt)
    .slice(0, MAX_PENDING);
  data.tx = Object.fromEntries(entries);
  // The transaction must be stored before the browser leaves: otherwise the callback cannot be verified.
  try {
    await saveSession(sreq, cfg.storeTimeout);
  } catch (err) {
    // Leave the session as it was, so express-session neither sets a cookie for it nor retries the write.
    if (original === undefined) delete sreq.session.oauth;
    else sreq.session.oauth = original;
    throw err;
  }

  const url = server.authorizationUrl(config, { state, codeChallenge: await calculatePKCECodeChallenge(verifier), nonce });
  res.redirect(302, url.href);
}
