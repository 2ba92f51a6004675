#!/usr/bin/env node
/**
 * Where a refresh storm's time goes (issue 14, P3). 4 processes of the package share one login, as in
 * `npm run bench`; each storm logs in with a 2 s access token, waits until it has expired, sends 50
 * concurrent calls to each process, then the same burst again with the fresh token (its control). For both
 * bursts it puts on the burst's clock (ms from its start): when the upstream API received its first, median
 * and last call, when the refresh started and was written (storm only), and each burst's p99.
 *
 *   npm run build && node bench/storm-timeline.js [--storms 11] [--verbose]
 *
 * Unpinned, like the benchmark's storm. Writes bench/results/tmp/storm-timeline-<run>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Children } from './lib/procs.js';
import { median } from './lib/stats.js';
import { API_RESOURCE, BENCH_DIR, CLIENT, appConfig, processFile } from './lib/config.js';

const { values: opts } = parseArgs({
  options: { storms: { type: 'string', default: '11' }, verbose: { type: 'boolean', default: false } },
  strict: true,
});
const storms = Number(opts.storms);
if (!Number.isInteger(storms) || storms < 1) throw new Error(`--storms must be a positive integer (got ${opts.storms})`);
const PROCESSES = 4;
const PER_PROCESS = 50;
const TOKEN_TTL_SEC = 2;

const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`;
const prefix = `bench:${runId}:timeline:`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const children = new Children({ verbose: opts.verbose });

/** A burst's events on its own clock: API arrivals (first, median, last) and the p99 of the responses. */
function place(burst, arrivals) {
  const at = arrivals.map((t) => t - burst.startedAt).sort((a, b) => a - b);
  return { apiFirst: at[0], apiMedian: median(at), apiLast: at.at(-1), apiCalls: at.length, p99: burst.p99, perProcessP50: burst.perInstance50 };
}

const fmt = (v) => (v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(0).padStart(4));

await children.runScript({ name: 'storm-timeline', deadlineMs: (60 + storms * 20) * 1000, prefix }, async () => {
  const provider = await children.start('provider', processFile('provider.js'), { ...CLIENT, apiResource: API_RESOURCE });
  const api = await children.start('api', processFile('api.js'), { issuer: provider.info.issuer, apiResource: API_RESOURCE });
  const loadgen = await children.start('loadgen', processFile('loadgen.js'), {});
  const apps = await Promise.all(
    Array.from({ length: PROCESSES }, (_, i) =>
      children.start(`pkg-${i + 1}`, processFile('app.js'), appConfig('pkg', { issuer: provider.info.issuer, apiUrl: api.info.url }, prefix)),
    ),
  );
  const urls = apps.map((a) => a.info.url);
  // Warm each process (JIT, the provider's JWKS, a storm's worth of keep-alive connections to the API).
  for (const url of urls) {
    const warm = await loadgen.request('login', { appUrl: url, user: 'alice' }, 30_000);
    await loadgen.request('load', { url: `${url}/p2`, cookie: warm.cookieHeader, connections: PER_PROCESS, amount: 1000 }, 60_000);
  }
  await Promise.all(apps.map((a) => a.request('diag', {})));

  const rows = [];
  console.log('ms from the burst start   | refresh start / written (process) | API calls first / median / last | p99  || control: API first / median / last | p99');
  for (let s = 1; s <= storms; s++) {
    await provider.request('setAccessTokenTtl', { seconds: TOKEN_TTL_SEC });
    let cookie;
    try {
      cookie = (await loadgen.request('login', { appUrl: urls[0], user: 'alice' }, 30_000)).cookieHeader;
    } finally {
      await provider.request('setAccessTokenTtl', { seconds: 3600 });
    }
    await sleep((TOKEN_TTL_SEC + 1) * 1000 + 300);
    await provider.request('reset');
    await api.request('arrivals', {});
    const burst = await loadgen.request('storm', { urls, path: '/p2', cookie, perInstance: PER_PROCESS }, 60_000);
    const stormArrivals = await api.request('arrivals', {});
    const counters = await provider.request('reset');
    const refreshes = (await Promise.all(apps.map((a) => a.request('diag', {})))).flatMap((d, k) => (d?.refreshes ?? []).map((r) => ({ process: k + 1, ...r })));
    const control = await loadgen.request('storm', { urls, path: '/p2', cookie, perInstance: PER_PROCESS }, 60_000);
    const controlArrivals = await api.request('arrivals', { stop: true });
    const ok = (burst.statuses['200'] ?? 0) + (control.statuses['200'] ?? 0);
    if (ok !== 2 * PROCESSES * PER_PROCESS) throw new Error(`storm ${s}: not every call succeeded: ${JSON.stringify(burst.statuses)} / ${JSON.stringify(control.statuses)}`);
    const r = refreshes[0];
    const row = {
      n: s,
      refreshRequests: counters.tokenRequests,
      providerRefreshMs: median(counters.refreshMs),
      refreshProcess: r?.process,
      refreshStarted: r ? r.at - r.durationMs - burst.startedAt : undefined,
      refreshWritten: r ? r.at - burst.startedAt : undefined,
      storm: place(burst, stormArrivals),
      control: place(control, controlArrivals),
    };
    rows.push(row);
    const st = row.storm;
    const ct = row.control;
    console.log(
      `storm ${String(s).padStart(2)} (${row.refreshRequests} refresh) | ${fmt(row.refreshStarted)} / ${fmt(row.refreshWritten)} (${row.refreshProcess}) | ${fmt(st.apiFirst)} / ${fmt(st.apiMedian)} / ${fmt(st.apiLast)} | ${fmt(st.p99)} || ${fmt(ct.apiFirst)} / ${fmt(ct.apiMedian)} / ${fmt(ct.apiLast)} | ${fmt(ct.p99)}`,
    );
  }
  const m = (f) => median(rows.map(f));
  const summary = {
    storms: rows.length,
    refreshStarted: m((r) => r.refreshStarted),
    refreshWritten: m((r) => r.refreshWritten),
    providerRefreshMs: m((r) => r.providerRefreshMs),
    storm: { apiFirst: m((r) => r.storm.apiFirst), apiMedian: m((r) => r.storm.apiMedian), apiLast: m((r) => r.storm.apiLast), p99: m((r) => r.storm.p99) },
    control: { apiFirst: m((r) => r.control.apiFirst), apiMedian: m((r) => r.control.apiMedian), apiLast: m((r) => r.control.apiLast), p99: m((r) => r.control.p99) },
    addedP99: m((r) => r.storm.p99 - r.control.p99),
    // After the token exists: from the refresh's write to the last call's arrival at the API, and from there to the p99.
    writtenToLastCall: m((r) => r.storm.apiLast - r.refreshWritten),
    lastCallToP99: { storm: m((r) => r.storm.p99 - r.storm.apiLast), control: m((r) => r.control.p99 - r.control.apiLast) },
  };
  console.log(
    `\nmedians over ${rows.length} storms: refresh started ${fmt(summary.refreshStarted)} ms and written ${fmt(summary.refreshWritten)} ms after the burst started (provider ${summary.providerRefreshMs.toFixed(1)} ms);` +
      ` API calls first/median/last ${fmt(summary.storm.apiFirst)} / ${fmt(summary.storm.apiMedian)} / ${fmt(summary.storm.apiLast)} ms (control ${fmt(summary.control.apiFirst)} / ${fmt(summary.control.apiMedian)} / ${fmt(summary.control.apiLast)});` +
      ` p99 ${fmt(summary.storm.p99)} against ${fmt(summary.control.p99)} ms (added, per storm: ${fmt(summary.addedP99)});` +
      ` from the write to the last call at the API ${fmt(summary.writtenToLastCall)} ms; from the last call to the p99 ${fmt(summary.lastCallToP99.storm)} ms (control ${fmt(summary.lastCallToP99.control)})`,
  );
  const dir = path.join(BENCH_DIR, 'results', 'tmp');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `storm-timeline-${runId}.json`);
  writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), summary, rows }, null, 2));
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
  await children.stopAll(5000);
});
