// One app instance in its own process, for the multi-instance tests: the same configuration as the
// parent's test app (same session store, token store prefix and key), built from dist/ like a user would.
import http from 'node:http';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { oauth, oauthErrorHandler, requireAuth, RedisTokenStore } from 'express-oauth-client';

const env = JSON.parse(process.env.CHILD_CONFIG);
const redis = createClient({ url: env.redisUrl });
redis.on('error', () => {});
await redis.connect();

const events = { refresh: 0, refresh_failed: 0 };
const auth = oauth({
  issuer: env.issuer,
  clientId: env.clientId,
  clientSecret: env.clientSecret,
  redirectUri: env.redirectUri,
  scope: env.scope,
  apiBaseUrl: env.apiUrl,
  tokenStore: new RedisTokenStore({ client: redis, prefix: env.prefix }),
  encryptionKey: env.encryptionKey,
  httpTimeout: env.httpTimeout ?? 10000,
  storeTimeout: env.storeTimeout ?? 2000,
  logger: { warn: () => {}, error: () => {} },
  ...(env.oauth ?? {}),
});
auth.events.on('refresh', () => events.refresh++);
auth.events.on('refresh_failed', () => events.refresh_failed++);
await auth.ready();

const app = express();
app.use(
  session({
    store: new RedisStore({ client: redis, prefix: `${env.prefix}sess:` }),
    secret: env.sessionSecret,
    resave: false,
    saveUninitialized: false,
  }),
);
app.use(auth);
app.get('/api/me', requireAuth(), async (req, res) => res.json((await req.oauthClient.get('/v1/me')).data));
app.get('/__events', (_req, res) => res.json(events));
app.use(oauthErrorHandler());
app.use((err, _req, res, _next) => res.status(500).json({ error: 'internal', name: err?.name }));

const server = http.createServer({ keepAlive: true }, app);
// Idle keep-alive sockets outlive the client's own idle timeout (undici: 4 s): the client closes them first.
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});
process.on('SIGTERM', () => {
  auth.close();
  server.close();
  redis.quit().finally(() => process.exit(0));
});
