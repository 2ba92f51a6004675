/**
 * The app process of the soak (bench/soak.js): the benchmark's "this package" variant (bench/variants/pkg.js,
 * built from dist/) on the local Redis under its own key prefix, plus a `sample` command that reports this
 * process's RSS, V8 heap and event-loop delay (p99 since the previous sample). It deletes its keys on exit.
 */
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { childConfig, serve } from './ipc.js';
import { connectRedis, deleteByPrefix } from './redis.js';

const cfg = childConfig();
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
let redis;
let server;
let closeApp;

const ipc = serve(
  {
    sample: () => {
      // A full collection first (the app runs with --expose-gc): heap used and external memory are then what is
      // live, not what the last young-generation cycle happened to leave.
      globalThis.gc?.();
      const m = process.memoryUsage();
      const out = {
        rssBytes: m.rss,
        heapUsedBytes: m.heapUsed,
        heapTotalBytes: m.heapTotal,
        externalBytes: m.external,
        eldP99Ms: eld.percentile(99) / 1e6,
        eldMaxMs: eld.max / 1e6,
      };
      eld.reset();
      return out;
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
  redis = await connectRedis(cfg.redisUrl);
  server = http.createServer();
  server.keepAliveTimeout = 65_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const { build } = await import('../variants/pkg.js');
  const built = await build({ ...cfg, origin, redis });
  closeApp = built.close;
  server.on('request', built.app);
  ipc.ready({ url: origin, pid: process.pid });
} catch (err) {
  ipc.fail(err);
}
