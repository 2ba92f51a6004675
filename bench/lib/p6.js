/**
 * P6 (issue 13): a GET through the package's API proxy (`oauthProxy`) to the upstream API, against a
 * hand-written proxy route (token read from the session) in the same run, rounds interleaved as for P1/P2;
 * then 200 MB streamed through each, with the app process's peak RSS before and after.
 */
import http from 'node:http';
import { median, min, max } from './stats.js';

export const P6_VARIANTS = [
  { id: 'pkg-proxy', kind: 'pkg-proxy', label: 'express-oauth-client oauthProxy()' },
  { id: 'baseline-proxy', kind: 'baseline-proxy', label: 'hand-written proxy route' },
];
const HEADERS = { 'x-csrf': '1', accept: 'application/json' };
const STREAM_BYTES = 200 * 1024 * 1024;

/** Downloads `url` and discards the body; resolves with the byte count. */
function download(url, cookie) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { cookie, ...HEADERS }, agent: false }, (res) => {
      let n = 0;
      res.on('data', (c) => (n += c.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`${url} answered ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error('stream timed out')));
    req.on('error', reject);
  });
}

/**
 * @param {{ startApp: Function, loadgen: any, settings: any, log: Function, sleep: Function, pinApp: (pid: number) => boolean, checkedLogin: Function }} ctx
 */
export async function runP6({ startApp, loadgen, settings, log, sleep, pinApp, checkedLogin, prefix }) {
  const apps = [];
  for (const v of P6_VARIANTS) {
    const child = await startApp(v.id, v, `${prefix}${v.id}:`);
    if (!pinApp(child.pid)) throw new Error(`could not pin ${v.id}`);
    const login = await checkedLogin(loadgen, child.info.url);
    const check = await loadgen.request(
      'load',
      { url: `${child.info.url}/p6/v1/me`, cookie: login.cookieHeader, headers: HEADERS, connections: 1, amount: 5 },
      30_000,
    );
    if ((check.statuses['200'] ?? 0) !== 5) throw new Error(`P6 ${v.id}: /p6/v1/me answered ${JSON.stringify(check.statuses)}`);
    apps.push({ variant: v, child, url: child.info.url, cookie: login.cookieHeader });
  }
  const load = (app, durationSec) =>
    loadgen.request(
      'load',
      { url: `${app.url}/p6/v1/me`, cookie: app.cookie, headers: HEADERS, connections: settings.connections, durationSec },
      (durationSec + 30) * 1000,
    );
  for (const app of apps) await load(app, settings.warmupSec);
  const samples = [];
  for (let round = 1; round <= settings.rounds; round++) {
    const order = round % 2 ? apps : [...apps].reverse();
    for (const app of order) {
      const r = await load(app, settings.durationSec);
      samples.push({ round, variant: app.variant.id, rps: r.rps, p99: r.p99, failed: r.non2xx + r.errors + r.timeouts });
      await sleep(300);
    }
    const [a, b] = P6_VARIANTS.map((v) => samples.find((s) => s.round === round && s.variant === v.id));
    log(
      `P6 round ${round}/${settings.rounds}: oauthProxy ${a.rps.toFixed(0)} req/s vs hand-written ${b.rps.toFixed(0)} (${(a.rps / b.rps).toFixed(3)}x)`,
    );
  }
  const streams = {};
  for (const app of apps) {
    const before = await app.child.request('stats', {}, 10_000);
    const started = performance.now();
    const bytes = await download(`${app.url}/p6/v1/stream?bytes=${STREAM_BYTES}`, app.cookie);
    const seconds = (performance.now() - started) / 1000;
    const after = await app.child.request('stats', {}, 10_000);
    streams[app.variant.id] = {
      bytes,
      seconds,
      mibPerSec: bytes / 2 ** 20 / seconds,
      peakRssBeforeMiB: before.maxRssBytes / 2 ** 20,
      peakRssAfterMiB: after.maxRssBytes / 2 ** 20,
      peakRssGrowthMiB: (after.maxRssBytes - before.maxRssBytes) / 2 ** 20,
    };
    log(
      `P6 stream ${app.variant.id}: ${(bytes / 2 ** 20).toFixed(0)} MiB in ${seconds.toFixed(1)} s, peak RSS ${streams[app.variant.id].peakRssBeforeMiB.toFixed(0)} -> ${streams[app.variant.id].peakRssAfterMiB.toFixed(0)} MiB`,
    );
  }
  for (const app of apps) await app.child.stop(10_000);

  const ratios = [...new Set(samples.map((s) => s.round))]
    .map((round) => {
      const [a, b] = P6_VARIANTS.map((v) => samples.find((s) => s.round === round && s.variant === v.id));
      return a.rps / b.rps;
    })
    .filter(Number.isFinite);
  const per = Object.fromEntries(
    P6_VARIANTS.map((v) => {
      const mine = samples.filter((s) => s.variant === v.id);
      return [
        v.id,
        {
          label: v.label,
          rps: median(mine.map((s) => s.rps)),
          p99: median(mine.map((s) => s.p99)),
          failed: mine.reduce((n, s) => n + s.failed, 0),
          stream: streams[v.id],
        },
      ];
    }),
  );
  return { summary: { ratio: median(ratios), ratioMin: min(ratios), ratioMax: max(ratios), streamBytes: STREAM_BYTES, variants: per }, samples };
}

/** The P6 targets, for the report's table. */
export function p6Targets(P6) {
  const pkg = P6.variants['pkg-proxy'];
  return [
    {
      id: 'P6a',
      text: 'P6 GET through oauthProxy req/s >= 1.0 x hand-written proxy route',
      measured: `${P6.ratio.toFixed(3)}x (rounds ${P6.ratioMin.toFixed(3)}-${P6.ratioMax.toFixed(3)})`,
      met: P6.ratio >= 1.0,
    },
    {
      id: 'P6b',
      text: 'P6 200 MB streamed through oauthProxy: memory flat (peak RSS grows < 64 MiB)',
      measured: `peak RSS ${pkg.stream.peakRssBeforeMiB.toFixed(0)} -> ${pkg.stream.peakRssAfterMiB.toFixed(0)} MiB (+${pkg.stream.peakRssGrowthMiB.toFixed(1)}), ${pkg.stream.mibPerSec.toFixed(0)} MiB/s`,
      met: pkg.stream.peakRssGrowthMiB < 64,
    },
  ];
}

/** Markdown lines of the P6 section. */
export function p6Markdown(P6) {
  const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  const lines = ['', '### P6: API proxy for browser apps (BFF)', ''];
  lines.push(
    '| Variant | GET req/s | p99 ms | failed | 200 MB stream s | MiB/s | peak RSS before -> after MiB |',
    '|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const v of Object.values(P6.variants)) {
    const s = v.stream;
    lines.push(
      `| ${v.label} | ${fmt(v.rps)} | ${fmt(v.p99, 1)} | ${v.failed} | ${fmt(s.seconds, 1)} | ${fmt(s.mibPerSec)} | ${fmt(s.peakRssBeforeMiB)} -> ${fmt(s.peakRssAfterMiB)} |`,
    );
  }
  lines.push(
    '',
    `oauthProxy vs the hand-written route: ${fmt(P6.ratio, 3)}x req/s (median of per-round ratios, rounds ${fmt(P6.ratioMin, 3)}-${fmt(P6.ratioMax, 3)}). ` +
      "Both: `GET /p6/v1/me` with the `X-CSRF: 1` header, forwarded with the session user's token to the same API; the hand-written route (node:http piping, as http-proxy-middleware does) checks the header and the login and nothing else, while oauthProxy also maps the path, filters headers both ways, caps and masks the body. " +
      'The stream is 200 MB from the API through each app, read and discarded by the client; peak RSS is getrusage maxrss of the app process.',
  );
  return lines;
}
