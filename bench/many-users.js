/**
 * Many users (issue 17 part 4): N sessions (default 10,000) whose access tokens all expired at the same
 * moment, called across 4 app processes sharing one Redis; every session must be refreshed exactly once
 * (counted at the provider), with no 5xx, and the time for the wave to settle is reported.
 *
 *   node bench/many-users.js [--sessions 10000] [--processes 4] [--calls 2] [--concurrency 64] [--out <dir>]
 *
 * Set-up by direct writes (not by 10,000 logins): the provider mints a grant and a refresh token per user
 * through its own models (processes/provider.js `mint`); the script seals each token record with the
 * package's RecordCipher (dist/crypto.js) under a fresh session id and writes it with the express-session
 * record (connect-redis format) and a signed session cookie. Records carry an access token that expired at
 * the same second for everybody.
 *
 * The wave: every session gets `--calls` concurrent calls of /p2 (the route that calls the API with the
 * user's token), each on a different app process; `--concurrency` sessions in flight. Settled = every call
 * of every session answered. Then a check pass: one more call per session (sampled) must be 200 without a
 * new refresh. Exit code 1 on a 5xx, a transport error, or refreshes != sessions, or any refresh error.
 * Every process is stopped by PID (also on error and SIGINT); the apps delete their keys on exit.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import signature from 'cookie-signature';
import { API_RESOURCE, BENCH_DIR, CLIENT, ENCRYPTION_KEY, SESSION_SECRET, appConfig } from './lib/config.js';
import { Children } from './lib/procs.js';
import { connectRedis } from './lib/redis.js';
import { percentile } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    sessions: { type: 'string', default: '10000' },
    processes: { type: 'string', default: '4' },
    calls: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '64' },
    out: { type: 'string', default: path.join(BENCH_DIR, 'results', 'tmp') },
    verbose: { type: 'boolean', default: false },
  },
});
const N = Number(args.sessions);
const P = Number(args.processes);
const CALLS = Math.min(Number(args.calls), P);
const CONCURRENCY = Number(args.concurrency);

const log = (m) => process.stderr.write(`[many-users ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const children = new Children({ verbose: args.verbose, onUnexpectedExit: (c, code, signal) => fail(new Error(`${c.name} exited (${signal ?? code})\n${c.tailText()}`)) });
let redis;
let done = false;
async function cleanup() {
  await children.stopAll(8000).catch(() => children.killAll());
  await redis?.quit().catch(() => {});
}
function fail(err) {
  if (done) return;
  done = true;
  log(`FAILED: ${err?.stack ?? err}`);
  cleanup().finally(() => process.exit(1));
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => fail(new Error(`interrupted (${sig})`)));
process.on('exit', () => children.killAll());

async function call(url, cookie) {
  const started = performance.now();
  try {
    const res = await fetch(url, { headers: { cookie, accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(60_000) });
    await res.arrayBuffer();
    return { status: res.status, ms: performance.now() - started };
  } catch {
    return { status: 0, ms: performance.now() - started };
  }
}

async function pool(items, limit, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

async function main() {
  const { RecordCipher } = await import('../dist/crypto.js');
  const provider = await children.start('provider', path.join(BENCH_DIR, 'processes', 'provider.js'), { ...CLIENT, apiResource: API_RESOURCE, storeSize: Math.max(10_000, N * 10) });
  const api = await children.start('api', path.join(BENCH_DIR, 'processes', 'api.js'), { issuer: provider.info.issuer, apiResource: API_RESOURCE });
  const prefix = `bench:many:${process.pid}:`;
  const cfg = appConfig('pkg', { issuer: provider.info.issuer, apiUrl: api.info.url }, prefix);
  const apps = await Promise.all(Array.from({ length: P }, (_, i) => children.start(`app${i}`, path.join(BENCH_DIR, 'lib', 'soak-app.js'), cfg, { readyTimeoutMs: 60_000 })));
  redis = await connectRedis();
  log(`${P} app processes, provider ${provider.info.issuer}; minting ${N} refresh tokens`);

  // 1. Mint at the provider (its own models), in batches.
  const mintStarted = performance.now();
  const minted = [];
  for (let off = 0; off < N; off += 1000) minted.push(...(await provider.request('mint', { count: Math.min(1000, N - off), offset: off, accountPrefix: 'mu' }, 300_000)));
  const mintMs = performance.now() - mintStarted;
  log(`minted ${minted.length} in ${(mintMs / 1000).toFixed(1)} s; writing sessions and sealed records`);

  // 2. Seal and write: the token record and the express-session record, everybody's token expired at T.
  const cipher = new RecordCipher([ENCRYPTION_KEY], { issuer: provider.info.issuer, clientId: CLIENT.clientId });
  const expiredAt = Math.floor(Date.now() / 1000) - 1;
  const writeStarted = performance.now();
  const sessions = [];
  await pool(minted, 200, async ({ accountId, refreshToken }) => {
    const sid = randomBytes(24).toString('base64url');
    const record = {
      version: 1,
      access_token: `expired-${randomBytes(8).toString('hex')}`,
      token_type: 'Bearer',
      expires_at: expiredAt,
      refresh_token: refreshToken,
      scope: 'openid email profile offline_access api:read',
      sub: accountId,
      updated_at: expiredAt - 3600,
    };
    const sealed = await cipher.seal(sid, record);
    const sess = {
      cookie: { originalMaxAge: null, expires: null, secure: false, httpOnly: true, path: '/', sameSite: 'lax' },
      oauth: { user: { sub: accountId, name: `User ${accountId}`, email: `${accountId}@example.test` }, loginAt: Date.now() },
    };
    await Promise.all([redis.set(`${prefix}tok:tok:{${sid}}`, sealed, { PX: 3_600_000 }), redis.set(`${prefix}sess:${sid}`, JSON.stringify(sess), { EX: 86_400 })]);
    sessions.push({ sid, cookie: `connect.sid=${encodeURIComponent(`s:${signature.sign(sid, SESSION_SECRET)}`)}` });
  });
  const writeMs = performance.now() - writeStarted;
  log(`wrote ${sessions.length} sessions in ${(writeMs / 1000).toFixed(1)} s; starting the wave`);

  // 3. The wave.
  const before = await provider.request('counters');
  const statuses = {};
  const latencies = [];
  const settledAt = [];
  const waveStarted = performance.now();
  let answered = 0;
  const progress = setInterval(() => log(`${answered} of ${N} sessions answered`), 10_000);
  try {
    await pool(sessions, CONCURRENCY, async (s) => {
      const first = Math.floor(Math.random() * P);
      const results = await Promise.all(Array.from({ length: CALLS }, (_, k) => call(`${apps[(first + k) % P].info.url}/p2`, s.cookie)));
      for (const r of results) {
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        latencies.push(r.ms);
      }
      s.ok = results.every((r) => r.status === 200);
      settledAt.push(performance.now() - waveStarted);
      answered++;
    });
  } finally {
    clearInterval(progress);
  }
  const waveMs = performance.now() - waveStarted;
  const after = await provider.request('counters');
  const refreshes = after.refreshGrants - before.refreshGrants;
  const refreshErrors = after.refreshErrors - before.refreshErrors;
  log(`wave settled in ${(waveMs / 1000).toFixed(1)} s: statuses ${JSON.stringify(statuses)}, refreshes ${refreshes}, errors ${refreshErrors}`);

  // 4. Check pass (sampled): the new tokens work everywhere without another refresh.
  const sample = sessions.filter((_, i) => i % Math.max(1, Math.floor(N / 1000)) === 0);
  const checkStatuses = {};
  await pool(sample, CONCURRENCY, async (s) => {
    const r = await call(`${apps[Math.floor(Math.random() * P)].info.url}/p2`, s.cookie);
    checkStatuses[r.status] = (checkStatuses[r.status] ?? 0) + 1;
  });
  const afterCheck = await provider.request('counters');
  const lat = Float64Array.from(latencies).sort();
  const cpus = os.cpus();
  const result = {
    meta: {
      date: new Date().toISOString(),
      machine: `${cpus[0]?.model?.trim() ?? 'cpu'}, ${cpus.length} cores, Node ${process.version}, load avg ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`,
      command: `node bench/many-users.js ${process.argv.slice(2).join(' ')}`.trim(),
      sessions: N,
      processes: P,
      callsPerSession: CALLS,
      concurrency: CONCURRENCY,
    },
    setup: { mintSeconds: mintMs / 1000, mintPerSecond: N / (mintMs / 1000), writeSeconds: writeMs / 1000 },
    wave: {
      settleSeconds: waveMs / 1000,
      sessionsPerSecond: N / (waveMs / 1000),
      half: percentile(Float64Array.from(settledAt).sort(), 50) / 1000,
      statuses,
      p50ms: percentile(lat, 50),
      p99ms: percentile(lat, 99),
      maxMs: lat[lat.length - 1],
      refreshes,
      refreshErrors,
      sessionsNotAll200: sessions.filter((s) => !s.ok).length,
    },
    check: { sampled: sample.length, statuses: checkStatuses, extraRefreshes: afterCheck.refreshGrants - after.refreshGrants },
  };
  const failures = [];
  for (const [st, n] of Object.entries(statuses)) if (Number(st) >= 500 || st === '0') failures.push(`${n} answers with status ${st}`);
  if (refreshes !== N) failures.push(`refreshes at the provider: ${refreshes}, expected exactly ${N}`);
  if (refreshErrors) failures.push(`refresh errors at the provider: ${refreshErrors}`);
  if (result.wave.sessionsNotAll200) failures.push(`${result.wave.sessionsNotAll200} sessions had a call not answered 200`);
  if (result.check.extraRefreshes) failures.push(`check pass refreshed again: ${result.check.extraRefreshes}`);
  if (Object.keys(checkStatuses).some((s) => s !== '200')) failures.push(`check pass statuses ${JSON.stringify(checkStatuses)}`);
  result.failures = failures;
  mkdirSync(args.out, { recursive: true });
  const file = path.join(args.out, `many-users-${N}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2));
  process.stdout.write(`${JSON.stringify(result, null, 2)}\nWritten: ${file}\n`);
  done = true;
  await cleanup();
  if (failures.length) {
    process.stdout.write(`many-users: FAILED\n${failures.map((f) => `  - ${f}`).join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write(`many-users: passed (${N} sessions, exactly one refresh each, no 5xx, settled in ${result.wave.settleSeconds.toFixed(1)} s)\n`);
}

main().catch(fail);
