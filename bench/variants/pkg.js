/** Variant "this package": oauth() + express-session on connect-redis + RedisTokenStore. */
import express from 'express';
import { oauth, oauthErrorHandler, requireAuth, RedisTokenStore } from 'express-oauth-client';
import { finalErrorHandler, healthz, logger, redisSession } from './common.js';

export async function build({ origin, issuer, apiUrl, redis, prefix, clientId, clientSecret, sessionSecret, encryptionKey, scope }) {
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
  });
  await auth.ready();

  const app = express();
  app.get('/healthz', healthz);
  app.use(redisSession({ redis, prefix, sessionSecret }));
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
  return { app, close: () => auth.close() };
}
