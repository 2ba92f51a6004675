// One app instance in its own process on a replicated Redis (cluster with replicas, or Sentinel), built
// from dist/ like a user would, configured as the README's "Operating" notes recommend: a bounded session
// store, no offline queue, reconnects with a short back-off, rediscovery after MOVED / a lost node.
import http from 'node:http';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { createCluster, createSentinel } from 'redis';
import { boundedSessionStore, oauth, oauthErrorHandler, requireAuth, RedisTokenStore } from 'express-oauth-client';

const env = JSON.parse(process.env.CHILD_CONFIG);
const socket = { connectTimeout: 1000, reconnectStrategy: (n) => Math.min(50 * n, 500) };
const redis =
  env.mode === 'sentinel'
    ? createSentinel({
        name: env.sentinelName,
        sentinelRootNodes: env.sentinelRootNodes,
        nodeClientOptions: { socket, disableOfflineQueue: true },
        sentinelClientOptions: { socket },
        scanInterval: 500,
      })
    : createCluster({
        rootNodes: env.rootNodes,
        defaults: { socket, disableOfflineQueue: true },
        maxCommandRedirections: 16,
        // After a node is lost, refresh the slot map 1 s after the first reconnection attempt (default 5 s:
        // commands for the lost master's slots would fail for ~5 s more after its replica took over).
        topologyRefreshOnReconnectionAttemptStrategy: env.topologyRefreshMs ?? 1000,
      });
const errors = {};
redis.on('error', (err) => {
  const k = String(err?.message ?? err).slice(0, 80);
  errors[k] = (errors[k] ?? 0) + 1;
});
await redis.connect();

const events = { refresh: 0, refresh_failed: 0, refreshFailedReasons: {}, errors5xx: {}, afterResponse: {} };
const auth = oauth({
  issuer: env.issuer,
  clientId: env.clientId,
  clientSecret: env.clientSecret,
  redirectUri: env.redirectUri,
  scope: env.scope,
  apiBaseUrl: env.apiUrl,
  tokenStore: new RedisTokenStore({ client: redis, prefix: env.prefix }),
  encryptionKey: env.encryptionKey,
  httpTimeout: env.httpTimeout ?? 5000,
  storeTimeout: env.storeTimeout ?? 1000,
  tokenCacheMs: 0,
  logger: { warn: () => {}, error: () => {} },
});
auth.events.on('refresh', () => events.refresh++);
auth.events.on('refresh_failed', (e) => {
  events.refresh_failed++;
  events.refreshFailedReasons[e.reason] = (events.refreshFailedReasons[e.reason] ?? 0) + 1;
});
await auth.ready();

const app = express();
app.use(
  session({
    store: boundedSessionStore(new RedisStore({ client: redis, prefix: `${env.prefix}sess:` }), { timeout: env.storeTimeout ?? 1000 }),
    secret: env.sessionSecret,
    resave: false,
    saveUninitialized: false,
  }),
);
app.use(auth);
app.get('/api/me', requireAuth(), async (req, res) => res.json((await req.oauthClient.get('/v1/me')).data));
app.get('/__events', (_req, res) => res.json({ ...events, redisErrors: errors }));
app.use(oauthErrorHandler());
app.use((err, _req, res, _next) => {
  const k = `${err?.name}: ${String(err?.message).slice(0, 120)}`;
  // express-session reports a failed `touch` (run when the response ends) after the answer was sent: the
  // client already has its status; count it apart.
  if (res.headersSent) {
    events.afterResponse[k] = (events.afterResponse[k] ?? 0) + 1;
    return;
  }
  events.errors5xx[k] = (events.errors5xx[k] ?? 0) + 1;
  res.status(500).json({ error: 'internal', name: err?.name });
});

const server = http.createServer({ keepAlive: true }, app);
// Idle keep-alive sockets outlive the client's own idle timeout (undici: 4 s), so the client closes them first and
// never sends on a socket the app is closing at that moment.
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});
process.on('SIGTERM', () => {
  auth.close();
  server.close();
  Promise.resolve(redis.close?.() ?? redis.quit?.())
    .catch(() => {})
    .finally(() => process.exit(0));
});
