/**
 * The client side, in its own process: autocannon (programmatic API) for throughput runs, a burst
 * generator for the refresh storm, and the HTTP browser that logs in through the provider's pages.
 *
 * Latencies come from autocannon's per-response `responseTime` (float ms), kept raw so p99 is not rounded
 * to whole milliseconds (autocannon's own histogram records integers).
 */
import http from 'node:http';
import autocannon from 'autocannon';
import { Browser, login } from '../lib/browser.js';
import { childConfig, serve } from '../lib/ipc.js';
import { percentile } from '../lib/stats.js';

childConfig();

const MAX_SAMPLES = 5_000_000;

function runAutocannon({ url, cookie, connections, durationSec, amount, headers: extra }) {
  return new Promise((resolve, reject) => {
    let samples = new Float64Array(1 << 16);
    let n = 0;
    const statuses = {};
    const started = performance.now();
    const instance = autocannon(
      {
        url,
        connections,
        // `amount` (a number of requests) ends the run as soon as they are answered; `duration` ends it on
        // autocannon's sampling tick.
        ...(amount ? { amount } : { duration: durationSec }),
        // autocannon ends a run on its sampling tick: a tick as long as the run, so a 0.5 s slice lasts 0.5 s.
        ...(amount ? {} : { sampleInt: Math.max(100, Math.min(1000, Math.round(durationSec * 1000))) }),
        headers: { ...(cookie ? { cookie } : {}), ...extra },
        timeout: 10,
      },
      (err, result) => {
        const wallSec = (performance.now() - started) / 1000;
        if (err) return reject(err);
        const lat = samples.subarray(0, n).sort();
        resolve({
          requests: n,
          seconds: result.duration,
          wallSec,
          rps: n / (result.duration || wallSec),
          p50: percentile(lat, 50),
          p99: percentile(lat, 99),
          max: n ? lat[n - 1] : NaN,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          statuses,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
      if (n === samples.length && n < MAX_SAMPLES) {
        const bigger = new Float64Array(samples.length * 2);
        bigger.set(samples);
        samples = bigger;
      }
      if (n < samples.length) samples[n++] = responseTime;
    });
  });
}

function get(agent, url, cookie) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = http.get(url, { agent, headers: cookie ? { cookie } : {}, timeout: 15_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started }));
      res.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
  });
}

/**
 * `perInstance` concurrent requests on each of `urls` at the same moment, on keep-alive sockets opened
 * beforehand (so the burst measures the app, not TCP connects).
 */
async function storm({ urls, path, cookie, perInstance }) {
  const agents = urls.map(() => new http.Agent({ keepAlive: true, maxSockets: perInstance }));
  try {
    await Promise.all(urls.flatMap((u, i) => Array.from({ length: perInstance }, () => get(agents[i], `${u}/healthz`))));
    const started = performance.now();
    const results = await Promise.all(
      urls.flatMap((u, i) => Array.from({ length: perInstance }, () => get(agents[i], `${u}${path}`, cookie).then((r) => ({ ...r, instance: i })))),
    );
    const wallMs = performance.now() - started;
    const lat = Float64Array.from(results.map((r) => r.ms)).sort();
    const statuses = {};
    for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    // Per app process: tells the process that refreshed apart from the ones that waited for it.
    const perInstance99 = urls.map((_, i) => percentile(Float64Array.from(results.filter((r) => r.instance === i).map((r) => r.ms)).sort(), 99));
    const perInstance50 = urls.map((_, i) => percentile(Float64Array.from(results.filter((r) => r.instance === i).map((r) => r.ms)).sort(), 50));
    // startedAt (epoch ms, sub-millisecond) lets bench/storm-timeline.js put the other processes' events on the burst's clock.
    return { requests: results.length, startedAt: performance.timeOrigin + started, wallMs, p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1], statuses, perInstance99, perInstance50 };
  } finally {
    for (const a of agents) a.destroy();
  }
}

const ipc = serve({
  load: runAutocannon,
  storm,
  /** One full login through the provider pages; returns the cookie and where the time went (client side). */
  login: async ({ appUrl, user }) => {
    const browser = new Browser();
    const started = performance.now();
    await login(browser, appUrl, user);
    const totalMs = performance.now() - started;
    const appHost = new URL(appUrl).host;
    let appMs = 0;
    let providerMs = 0;
    /** The app's requests of a login: its login route (the first) and the callback (the last). */
    const appRequests = [];
    for (const t of browser.timings) {
      if (t.host === appHost) {
        appMs += t.ms;
        appRequests.push(t.ms);
      } else providerMs += t.ms;
    }
    const cookieHeader = browser.cookieHeader(appUrl);
    return {
      totalMs,
      appClientMs: appMs,
      loginRouteMs: appRequests[0],
      callbackMs: appRequests.at(-1),
      providerClientMs: providerMs,
      requests: browser.timings.length,
      cookieHeader,
      cookieBytes: Buffer.byteLength(cookieHeader),
      cookieNames: [...browser.cookies(appUrl).keys()],
    };
  },
  /** A plain GET with a cookie, for sanity checks. */
  fetch: async ({ url, cookie }) => {
    const res = await fetch(url, { headers: cookie ? { cookie } : {}, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    return { status: res.status, body: (await res.text()).slice(0, 2000) };
  },
});
ipc.ready({ pid: process.pid });
