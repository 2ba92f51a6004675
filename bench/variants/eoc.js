/**
 * Variants "express-openid-connect": its default encrypted cookie session (`eoc-cookie`), or a
 * connect-redis session store through its `session.store` option (`eoc-redis`). Everything else is left at
 * its defaults except what the flow needs (authorization code flow, the scope, telemetry off). The API is
 * called with the same shared keep-alive axios instance as the baseline; an expired token is refreshed
 * the way its documentation shows (`isExpired()` then `refresh()`).
 */
import express from 'express';
import eoc from 'express-openid-connect';
import { RedisStore } from 'connect-redis';
import { apiClient, finalErrorHandler, healthz } from './common.js';

const { auth, requiresAuth } = eoc;

export async function build({ variant, origin, issuer, apiUrl, redis, prefix, clientId, clientSecret, sessionSecret, scope }) {
  const api = apiClient(apiUrl);
  const app = express();
  app.get('/healthz', healthz);
  app.use(
    auth({
      issuerBaseURL: issuer,
      baseURL: origin,
      clientID: clientId,
      clientSecret,
      secret: sessionSecret,
      authRequired: false,
      idpLogout: false,
      enableTelemetry: false,
      authorizationParams: { response_type: 'code', response_mode: 'query', scope: scope.join(' ') },
      routes: { login: '/login', callback: '/callback', logout: '/logout' },
      ...(variant === 'eoc-redis' ? { session: { store: new RedisStore({ client: redis, prefix: `${prefix}sess:` }) } } : {}),
    }),
  );
  app.get('/p1', requiresAuth(), (req, res) => {
    res.json({ sub: req.oidc.user.sub });
  });
  app.get('/p2', requiresAuth(), async (req, res) => {
    let token = req.oidc.accessToken;
    if (token.isExpired()) token = await token.refresh();
    const { data } = await api.client.get('/v1/me', { headers: { authorization: `Bearer ${token.access_token}` } });
    res.json(data);
  });
  app.use(finalErrorHandler);
  return { app, close: api.close };
}
