/**
 * One variant app, in its own process: `config.variant` picks the file in bench/variants/. The app listens
 * on 127.0.0.1:0, so its redirect URI is known only once it listens. It uses the local Redis under its
 * own key prefix and deletes every key under that prefix when it exits.
 *
 * Every variant exposes the same routes: `/healthz` (no session), `/login`, `/callback`, `/p1` (a
 * protected route that does not call the API) and `/p2` (a protected route that calls the upstream API
 * with the user's access token, refreshing it when it has expired).
 */
import http from 'node:http';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { childConfig, serve } from '../lib/ipc.js';
import { connectRedis, deleteByPrefix } from '../lib/redis.js';

const VARIANTS = {
  pkg: '../variants/pkg.js',
  // P2 only: the package with DPoP, against the package without (run.js P2_ONLY).
  'pkg-dpop': '../variants/pkg-dpop.js',
  // The package with boundedSessionStore's touch passed on every request (touchAfter: 0), reported beside pkg.
  'pkg-eager': '../variants/pkg-eager.js',
  // bench/login-ablation.js only: the package with parts of the login switched off, to measure each.
  'pkg-ablate': '../variants/pkg-ablate.js',
  baseline: '../variants/baseline.js',
  'eoc-cookie': '../variants/eoc.js',
  'eoc-redis': '../variants/eoc.js',
  // P6: the same apps plus an API proxy route (the package's oauthProxy vs a hand-written one).
  'pkg-proxy': '../variants/pkg-proxy.js',
  'baseline-proxy': '../variants/baseline-proxy.js',
};

const cfg = childConfig();

// Garbage-collection pauses of this process by kind (count and total ms), for `gc` below.
const GC_KINDS = { [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor', [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major', [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb' };
const gcTotals = {};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = GC_KINDS[e.detail?.kind] ?? 'other';
    const t = (gcTotals[kind] ??= { count: 0, ms: 0 });
    t.count++;
    t.ms += e.duration;
  }
}).observe({ entryTypes: ['gc'] });
let redis;
let server;
let closeApp;
let diagnostics;

const ipc = serve(
  {
    /** Peak RSS (getrusage maxrss) and current memory of this process. */
    stats: () => ({ maxRssBytes: process.resourceUsage().maxRSS * 1024, rssBytes: process.memoryUsage().rss, pid: process.pid }),
    /** Whatever the variant reports about itself (and resets), e.g. the package's refresh events. */
    diag: () => diagnostics?.() ?? null,
    /** Garbage-collection pauses so far, by kind: `{ minor: { count, ms }, major: ... }`. */
    gc: () => gcTotals,
    /** CPU time of this process so far (all threads, user + system), in microseconds. */
    cpu: () => {
      const { user, system } = process.cpuUsage();
      return user + system;
    },
  },
  {
    onExit: async () => {
      closeApp?.();
      if (server) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(() => resolve()));
      }
      if (redis) {
        await deleteByPrefix(redis, cfg.prefix);
        await redis.quit().catch(() => {});
      }
    },
    exitTimeoutMs: 8000,
  },
);

try {
  const file = VARIANTS[cfg.variant];
  if (!file) throw new Error(`unknown variant ${cfg.variant}`);
  redis = await connectRedis(cfg.redisUrl);
  server = http.createServer();
  server.keepAliveTimeout = 65_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const { build } = await import(file);
  const built = await build({ ...cfg, origin, redis });
  closeApp = built.close;
  diagnostics = built.diagnostics;
  server.on('request', built.app);
  ipc.ready({ url: origin, pid: process.pid });
} catch (err) {
  ipc.fail(err);
}
