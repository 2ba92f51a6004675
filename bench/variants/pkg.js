/** Variant "this package": oauth() + express-session on connect-redis (wrapped in boundedSessionStore with its defaults, as the README recommends) + RedisTokenStore. */
import express from 'express';
import { boundedSessionStore, oauth, oauthErrorHandler, requireAuth, RedisTokenStore } from 'express-oauth-client';
import { finalErrorHandler, healthz, logger, redisSession } from './common.js';

export async function build({ origin, issuer, apiUrl, redis, prefix, clientId, clientSecret, sessionSecret, encryptionKey, scope, dpop = false, touchAfter }) {
  const auth = oauth({
    issuer,
    clientId,
    clientSecret,
    redirectUri: `${origin}/callback`,
    scope,
    apiBaseUrl: apiUrl,
    tokenStore: new RedisTokenStore({ client: redis, prefix: `${prefix}tok:` }),
    encryptionKey,
    paths: { login: '/login' },
    logger,
    // The pkg-dpop variant (variants/pkg-dpop.js): DPoP-bound tokens, a proof per API call.
    ...(dpop ? { dpop: true } : {}),
  });
  await auth.ready();
  // Diagnostics for the storm report: how long each refresh took inside this process (the package's own
  // `refresh` event: from the token request to the record written).
  const refreshes = [];
  auth.events.on('refresh', (e) => refreshes.length < 1000 && refreshes.push({ durationMs: e.durationMs, at: Date.now() }));
  auth.events.on('refresh_failed', (e) => refreshes.length < 1000 && refreshes.push({ failed: e.reason, durationMs: e.durationMs, at: Date.now() }));

  const app = express();
  app.get('/healthz', healthz);
  app.use(redisSession({ redis, prefix, sessionSecret, wrap: (store) => boundedSessionStore(store, touchAfter === undefined ? {} : { touchAfter }) }));
  app.use(auth);
  app.get('/p1', requireAuth(), (req, res) => {
    res.json({ sub: req.oauth.user.sub });
  });
  app.get('/p2', requireAuth(), async (req, res) => {
    const { data } = await req.oauthClient.get('/v1/me');
    res.json(data);
  });
  app.use(oauthErrorHandler());
  app.use(finalErrorHandler);
  return { app, close: () => auth.close(), diagnostics: () => ({ refreshes: refreshes.splice(0) }) };
}
