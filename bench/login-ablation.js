/**
 * What each part of the package's login costs (issue 14, P4). Logins one after another through the
 * provider's pages, as `bench/profile.js --scenario P4` makes them, against one process of the package
 * (`variants/pkg-ablate.js`) in which parts of the login are switched off between slices: nothing, then
 * each of the single-use claim, the re-read for other tabs, the old session's destroy, the session index
 * and the record's encryption alone, then all five; and against express-openid-connect with its Redis
 * store in a process of its own. The lines take turns in short slices (their order rotating), so drift of
 * the machine's speed spreads over all of them; a line's cost is the median over slices of its difference
 * to the package's whole login in the same slice.
 *
 *   npm run build && node bench/login-ablation.js [--slices 12] [--slice 1.5] [--out NAME]
 *   node bench/login-ablation.js --gap 250 --per-slice 4     # spaced logins: the login code runs cold
 *
 * Back to back, the login code is hot (optimized, in the caches); spaced out (`--gap`), it runs as in an
 * app where logins are rare, and as in `npm run bench`'s P4 (one login per variant between the load
 * rounds), where every system call and every store round trip costs several times more.
 *
 * Reports the app's CPU per login (all threads) and the median time a login spends at the app (its two
 * requests as the client saw them, the provider's back channel inside the callback included). Run it on
 * a quiet machine: it measures differences of a tenth of a millisecond.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Children } from './lib/procs.js';
import { API_RESOURCE, BENCH_DIR, CLIENT, appConfig, processFile } from './lib/config.js';

const { values: opts } = parseArgs({
  options: {
    slices: { type: 'string', default: '12' },
    slice: { type: 'string', default: '1.5' },
    gap: { type: 'string', default: '0' },
    'per-slice': { type: 'string', default: '4' },
    out: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});
const slices = Math.max(2, Number(opts.slices));
const sliceMs = Math.max(0.5, Number(opts.slice)) * 1000;
/** With a gap: a pause before each login, and a fixed number of logins per line and slice. */
const gapMs = Math.max(0, Number(opts.gap));
const perSlice = Math.max(1, Number(opts['per-slice']));
if (opts.out && !/^[A-Za-z0-9._-]+$/.test(opts.out)) throw new Error('--out must be a plain file name');

/** Each line: which app, and (for the package) what is switched off. */
const LINES = [
  { id: 'pkg', app: 'pkg', off: '', label: 'the package (whole login)' },
  { id: 'no-claim', app: 'pkg', off: 'claim', label: 'without the single-use claim' },
  { id: 'no-reload', app: 'pkg', off: 'reload', label: 'without the re-read for other tabs' },
  { id: 'no-destroy', app: 'pkg', off: 'destroy', label: "without the old session's destroy" },
  { id: 'no-index', app: 'pkg', off: 'index', label: 'without the session index' },
  { id: 'no-seal', app: 'pkg', off: 'seal', label: 'without encryption of the record' },
  { id: 'none', app: 'pkg', off: 'claim,reload,destroy,index,seal', label: 'without all five' },
  { id: 'eoc-redis', app: 'eoc', off: '', label: 'express-openid-connect (Redis store)' },
];

const runId = `abl${Date.now().toString(36)}`;
const prefix = `bench:${runId}:`;
const children = new Children({ verbose: opts.verbose });
const deadlineMs = slices * LINES.length * (gapMs > 0 ? perSlice * (gapMs + 2000) : sliceMs + 2000) + 120_000;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

await children.runScript({ name: 'login-ablation', deadlineMs, prefix }, async () => {
  const provider = await children.start('provider', processFile('provider.js'), { ...CLIENT, apiResource: API_RESOURCE });
  const api = await children.start('api', processFile('api.js'), { issuer: provider.info.issuer, apiResource: API_RESOURCE });
  const loadgen = await children.start('loadgen', processFile('loadgen.js'), {});
  const urls = { issuer: provider.info.issuer, apiUrl: api.info.url };
  const apps = {
    pkg: await children.start('app-pkg', processFile('app.js'), appConfig('pkg-ablate', urls, `${prefix}p:`)),
    eoc: await children.start('app-eoc', processFile('app.js'), appConfig('eoc-redis', urls, `${prefix}e:`)),
  };
  const setOff = async (off) => {
    const res = await fetch(`${apps.pkg.info.url}/__ablate?off=${off}`, { method: 'POST', signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`switching ${off || 'nothing'} off failed: ${res.status} ${await res.text()}`);
  };
  /** Logins one after another for `ms`: app CPU per login and each login's time at the app. */
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const loginsFor = async (app, ms) => {
    const walls = [];
    let cpu = 0;
    if (gapMs > 0) {
      // Spaced logins: CPU counted per login (from just before to just after it), not over the pauses.
      for (let i = 0; i < perSlice; i++) {
        await sleep(gapMs);
        const cpu0 = await app.request('cpu', {});
        walls.push((await loadgen.request('login', { appUrl: app.info.url }, 30_000)).appClientMs);
        cpu += (await app.request('cpu', {})) - cpu0;
      }
    } else {
      const cpu0 = await app.request('cpu', {});
      const until = performance.now() + ms;
      while (performance.now() < until) walls.push((await loadgen.request('login', { appUrl: app.info.url }, 30_000)).appClientMs);
      cpu = (await app.request('cpu', {})) - cpu0;
    }
    return { cpuMs: cpu / walls.length / 1000, walls };
  };
  // Warm-up: every code path of both apps, JIT and connections.
  for (const line of LINES) {
    if (line.app === 'pkg') await setOff(line.off);
    await loginsFor(apps[line.app], 600);
  }

  /** Per line: CPU per login of each slice, every login's wall time, and its difference to the package's in the same slice. */
  const data = new Map(LINES.map((l) => [l.id, { cpu: [], walls: [], dCpu: [], dWall: [] }]));
  for (let s = 0; s < slices; s++) {
    const order = LINES.map((_, i) => LINES[(i + s) % LINES.length]);
    const slice = new Map();
    for (const line of order) {
      if (line.app === 'pkg') await setOff(line.off);
      const r = await loginsFor(apps[line.app], sliceMs);
      slice.set(line.id, { cpuMs: r.cpuMs, wallMs: median(r.walls) });
      const d = data.get(line.id);
      d.cpu.push(r.cpuMs);
      d.walls.push(...r.walls);
    }
    const base = slice.get('pkg');
    for (const [id, r] of slice) {
      data.get(id).dCpu.push(r.cpuMs - base.cpuMs);
      data.get(id).dWall.push(r.wallMs - base.wallMs);
    }
    console.error(`slice ${s + 1}/${slices}: ${[...slice].map(([id, r]) => `${id} ${r.cpuMs.toFixed(2)}`).join(', ')} (ms CPU per login)`);
  }
  await setOff('');

  const sign = (x) => (x >= 0 ? '+' : '') + x.toFixed(2);
  const rows = LINES.map((l) => {
    const d = data.get(l.id);
    return {
      id: l.id,
      label: l.label,
      off: l.off,
      cpuMs: median(d.cpu),
      wallMs: median(d.walls),
      logins: d.walls.length,
      cpuVsPkg: median(d.dCpu),
      wallVsPkg: median(d.dWall),
    };
  });
  console.log('| login | app CPU per login (ms) | vs the whole login | time at the app (ms) | vs the whole login |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) {
    const vs = (x) => (r.id === 'pkg' ? '' : sign(x));
    console.log(`| ${r.label} | ${r.cpuMs.toFixed(2)} | ${vs(r.cpuVsPkg)} | ${r.wallMs.toFixed(2)} | ${vs(r.wallVsPkg)} |`);
  }
  console.log(
    `(${slices} slices of ${gapMs > 0 ? `${perSlice} logins ${gapMs} ms apart` : `${sliceMs / 1000} s`} per line, ${rows.reduce((n, r) => n + r.logins, 0)} logins; "vs the whole login": median over slices of the difference to the package's whole login in the same slice; ${new Date().toISOString()})`,
  );
  if (opts.out)
    writeFileSync(
      path.join(BENCH_DIR, 'results', `${opts.out}.json`),
      `${JSON.stringify({ at: new Date().toISOString(), slices, sliceMs, gapMs, perSlice, rows }, null, 2)}\n`,
    );
  for (const app of Object.values(apps)) await app.stop(15_000);
  await children.stopAll();
});
