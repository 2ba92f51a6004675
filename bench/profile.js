#!/usr/bin/env node
/**
 * CPU-profiles one variant under one scenario's load, with the same processes as the benchmark:
 *
 *   npm run build && node bench/profile.js --variant pkg --scenario P2 --duration 15
 *   node bench/profile.js --summarize bench/results/tmp/profiles/<file>.cpuprofile [--focus REGEX]
 *   node bench/profile.js --heap --variant pkg --scenario P1    # allocation sampling instead of CPU
 *   node bench/profile.js --summarize-heap FILE.heapprofile [--requests N]
 *
 * The app process runs under `node --cpu-prof`; the profile is written when it exits and summarized
 * (self time by area, top functions by self and inclusive time). Profiles go to bench/results/tmp/profiles/.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Children } from './lib/procs.js';
import { API_RESOURCE, BENCH_DIR, CLIENT, appConfig, processFile } from './lib/config.js';
import { summarizeHeapProfile, summarizeProfile } from './lib/cpuprofile.js';

const { values: opts } = parseArgs({
  options: {
    variant: { type: 'string', default: 'pkg' },
    scenario: { type: 'string', default: 'P2' },
    duration: { type: 'string', default: '15' },
    // P4 only: a pause between logins, in ms (spaced logins run the login code cold, as in an app where logins are rare).
    gap: { type: 'string', default: '0' },
    connections: { type: 'string', default: '16' },
    summarize: { type: 'string' },
    heap: { type: 'boolean', default: false },
    // Measure only (req/s, app CPU per request, GC pauses): no profiler attached.
    'no-prof': { type: 'boolean', default: false },
    // Extra node flags for the app process, space-separated (e.g. "--trace-gc-nvp").
    'node-args': { type: 'string', default: '' },
    'summarize-heap': { type: 'string' },
    requests: { type: 'string' },
    focus: { type: 'string' },
    top: { type: 'string', default: '30' },
    verbose: { type: 'boolean', default: false },
  },
});

if (opts.summarize) {
  console.log(summarizeProfile(opts.summarize, { top: Number(opts.top), focus: opts.focus }));
  process.exit(0);
}
if (opts['summarize-heap']) {
  console.log(summarizeHeapProfile(opts['summarize-heap'], { top: Number(opts.top), focus: opts.focus, requests: opts.requests ? Number(opts.requests) : undefined }));
  process.exit(0);
}

const paths = { P1: '/p1', P2: '/p2', P4: '/login', P6: '/p6/v1/me' };
if (!paths[opts.scenario]) throw new Error('--scenario must be P1, P2, P4 (full logins, one after another) or P6 (GET through the API proxy)');
// P6 runs the proxy variants: the package's oauthProxy() or the hand-written proxy route.
const extraHeaders = opts.scenario === 'P6' ? { 'x-csrf': '1' } : undefined;
if (!['pkg', 'pkg-eager', 'baseline', 'eoc-cookie', 'eoc-redis', 'pkg-proxy', 'baseline-proxy', 'pkg-dpop', 'pkg-ablate'].includes(opts.variant))
  throw new Error('--variant must be pkg, pkg-eager, baseline, eoc-cookie, eoc-redis, pkg-dpop, pkg-proxy, baseline-proxy or pkg-ablate');
const duration = Math.min(120, Math.max(1, Number(opts.duration)));
const runId = `prof${Date.now().toString(36)}`;
const prefix = `bench:${runId}:`;
const dir = path.join(BENCH_DIR, 'results', 'tmp', 'profiles');
mkdirSync(dir, { recursive: true });
const name = `${opts.variant}-${opts.scenario}-${runId}.${opts.heap ? 'heapprofile' : 'cpuprofile'}`;

const children = new Children({ verbose: opts.verbose });

await children.runScript({ name: 'profile run', deadlineMs: (duration + 90) * 1000, prefix }, async () => {
  const provider = await children.start('provider', processFile('provider.js'), { ...CLIENT, apiResource: API_RESOURCE });
  const api = await children.start('api', processFile('api.js'), { issuer: provider.info.issuer, apiResource: API_RESOURCE });
  const loadgen = await children.start('loadgen', processFile('loadgen.js'), {});
  const app = await children.start('app', processFile('app.js'), appConfig(opts.variant, { issuer: provider.info.issuer, apiUrl: api.info.url }, prefix), {
    execArgv: [...opts['node-args'].split(' ').filter(Boolean), ...(opts['no-prof'] ? [] : opts.heap ? ['--import', path.join(BENCH_DIR, 'lib', 'heap-sample.js')] : ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}`])],
    env: opts.heap ? { BENCH_HEAP_PROFILE: path.join(dir, name) } : undefined,
  });
  const login = await loadgen.request('login', { appUrl: app.info.url }, 30_000);
  const url = `${app.info.url}${paths[opts.scenario]}`;
  /** What the profile covers, for per-unit figures: logins (P4) or requests (the heap profile counts the warm-up too). */
  let units;
  if (opts.scenario === 'P4') {
    // Logins one after another through the provider's pages, for `duration` seconds.
    const cpuStart = await app.request('cpu', {});
    const until = Date.now() + duration * 1000;
    let logins = 0;
    const [appWall, loginRoute, callback] = [[], [], []];
    while (Date.now() < until) {
      const l = await loadgen.request('login', { appUrl: app.info.url }, 30_000);
      appWall.push(l.appClientMs);
      loginRoute.push(l.loginRouteMs);
      callback.push(l.callbackMs);
      logins++;
      if (Number(opts.gap) > 0) await new Promise((resolve) => setTimeout(resolve, Number(opts.gap)));
    }
    const cpuEnd = await app.request('cpu', {});
    const at = (xs, q) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)].toFixed(2);
    // Time at the app as the client saw it (its login route and callback; the provider's back channel inside the callback included).
    const wall = `app wall time median ${at(appWall, 0.5)} ms (p90 ${at(appWall, 0.9)}; login route ${at(loginRoute, 0.5)}, callback ${at(callback, 0.5)})`;
    console.log(`${opts.variant} P4: ${logins} logins in ${duration} s, app CPU ${((cpuEnd - cpuStart) / logins / 1000).toFixed(2)} ms per login, ${wall}`);
    units = logins;
  } else {
    const load = (durationSec) => ({ url, cookie: login.cookieHeader, connections: Number(opts.connections), durationSec, headers: extraHeaders });
    const warm = await loadgen.request('load', load(2), 60_000);
    const gc0 = structuredClone(await app.request('gc', {}));
    const cpu0 = await app.request('cpu', {});
    const r = await loadgen.request('load', load(duration), (duration + 60) * 1000);
    console.log(`${opts.variant} ${opts.scenario}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99.toFixed(1)} ms, ${r.non2xx + r.errors} failed (profile includes startup, login and a 2 s warm-up)`);
    const gc1 = await app.request('gc', {});
    const cpu1 = await app.request('cpu', {});
    const reqs = Math.round(r.rps * duration);
    console.log(`app CPU ${((cpu1 - cpu0) / reqs).toFixed(1)} µs per request`);
    for (const [kind, t] of Object.entries(gc1)) {
      const d = { count: t.count - (gc0[kind]?.count ?? 0), ms: t.ms - (gc0[kind]?.ms ?? 0) };
      console.log(`gc ${kind}: ${d.count} pauses, ${d.ms.toFixed(0)} ms in all, ${((1000 * d.ms) / reqs).toFixed(1)} µs per request`);
    }
    // The heap profile counts the login and the warm-up too; per request is an upper bound.
    units = reqs + (opts.heap ? Math.round(warm.rps * 2) : 0);
  }
  await app.stop(15_000);
  await children.stopAll();
  if (!opts['no-prof']) {
    const file = path.join(dir, name);
    console.log(opts.heap ? summarizeHeapProfile(file, { top: Number(opts.top), focus: opts.focus, requests: units }) : summarizeProfile(file, { top: Number(opts.top), focus: opts.focus }));
  }
});
