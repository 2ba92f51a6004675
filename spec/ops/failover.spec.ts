/**
 * Issue 17 part 1: a Redis Cluster with replicas (3 masters + 3 replicas) carrying sessions and token
 * records, under traffic from 4 app processes (this one + 3 children built from dist/), while a master is
 * failed over: first a coordinated `CLUSTER FAILOVER` on its replica, then a SIGKILL of another master.
 * CI-only suite (`npm run test:ops`): it starts 6 redis-servers and 3 app processes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCluster } from 'redis';
import type { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import {
  callApi,
  dropErrorsAfterResponse,
  errorsAfterResponse,
  startHaChildren,
  startTraffic,
  startWriteProbe,
  tally,
  type HaChild,
  type Sample,
} from '../helpers/ha-traffic.js';
import { startReplicatedCluster, until, type ReplicatedCluster } from '../helpers/redis-replicated.js';

const SESSIONS = 16;
const STORE_TIMEOUT = 1000;
/**
 * O2: the first token falls due at least this long after the expiries are scheduled, the kill at least 500 ms before
 * it. Due times are whole seconds (`expires_at`), so the 16 tokens, 150 ms apart, fall due in 3 or 4 batches.
 */
const FIRST_DUE_MS = 3500;
const KILL_BY_MS = FIRST_DUE_MS - 500;

let cluster: ReplicatedCluster;
let client: ReturnType<typeof createCluster>;
let env: TestEnv;
let children: HaChild[] = [];
const sessions: TestBrowser[] = [];
const report: Record<string, unknown> = {};
/** Why this process's refreshes failed in the current test (`refresh_failed` reasons); the children count theirs. */
let inProcessRefreshFailed: Record<string, number> = {};

beforeAll(async () => {
  cluster = await startReplicatedCluster({ nodeTimeoutMs: 1500 });
  // Rediscovery: MOVED answers are followed (maxCommandRedirections) and refresh the slot map; a lost node's
  // client reconnects with a short back-off; no offline queue, so commands to a dead node fail at once.
  client = createCluster({
    rootNodes: cluster.rootNodes,
    defaults: { socket: { connectTimeout: 1000, reconnectStrategy: (n: number) => Math.min(50 * n, 500) }, disableOfflineQueue: true },
    maxCommandRedirections: 16,
    topologyRefreshOnReconnectionAttemptStrategy: 1000,
  });
  client.on('error', () => {});
  await client.connect();
  env = await createEnv({
    // Sessions (connect-redis, bounded) and token records (RedisTokenStore) on the cluster client.
    redis: client as never,
    oauth: { tokenCacheMs: 0, storeTimeout: STORE_TIMEOUT, httpTimeout: 5000 },
    routes: dropErrorsAfterResponse,
  });
  env.auth.events.on('refresh_failed', (e) => (inProcessRefreshFailed[e.reason] = (inProcessRefreshFailed[e.reason] ?? 0) + 1));
  children = await startHaChildren(3, env, { mode: 'cluster', rootNodes: cluster.rootNodes }, { storeTimeout: STORE_TIMEOUT });
  for (let i = 0; i < SESSIONS; i++) sessions.push((await env.login()).browser);
}, 120000);

afterAll(async () => {
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await env?.close();
  await client?.close().catch(() => {});
  await cluster?.stop();
  const file = path.join(os.tmpdir(), `eoc-failover-report-${process.pid}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2));
  process.stdout.write(`\nfailover report (${file}):\n${JSON.stringify(report, null, 2)}\n`);
}, 60000);

const apps = () => [env.appUrl, ...children.map((c) => c.url)];

/**
 * Makes every pre-established session's access token due at `firstDueMs` from now, one every `stepMs` (refresh
 * window 0). All sessions are rewritten at once (a round trip's time, also on a loaded machine). A token is never
 * due before its own rewrite, so no refresh races one; a second call before the tokens of the first are all
 * refreshed would (see O2).
 */
async function scheduleExpiry(firstDueMs: number, stepMs: number) {
  await Promise.all(
    sessions.map(async (browser, i) => {
      const sid = env.sid(browser);
      const record = await env.readRecord(sid);
      if (!record) throw new Error(`session ${i} has no token record to schedule`);
      const due = Math.ceil((Date.now() + firstDueMs + i * stepMs) / 1000);
      await env.writeRecord(sid, { ...record, expires_at: due, updated_at: due });
    }),
  );
}

/** Every pre-established session and every login completed before `before` still works (200) on every app. */
async function lostSessions(browsers: TestBrowser[]) {
  const lost: number[] = [];
  for (let i = 0; i < browsers.length; i++) {
    let status = 0;
    // Bounded retries: the cluster may still be settling for a moment.
    for (let a = 0; a < 40; a++) {
      status = (await callApi(env, browsers[i]!, apps()[i % apps().length]!)).status;
      if (status !== 503) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    if (status !== 200) lost.push(i);
  }
  return lost;
}

/**
 * What a failing run needs to be read: each pre-established session's record (there or not, seconds until its
 * access token is due, version), its refresh lock (ms left), and the answers it got from `from` on.
 */
async function diagnose(samples: Sample[], from: number) {
  const out = [];
  for (let i = 0; i < sessions.length; i++) {
    const sid = env.sid(sessions[i]!);
    const record = await env.readRecord(sid).catch((e: Error) => ({ error: e.message }) as const);
    const lockMs = await client.pTTL(`${env.prefix}lock:{${sid}}`).catch(() => 'error');
    const answers: Record<string, number> = {};
    const firstMs: Record<string, number> = {};
    for (const s of samples) {
      if (s.session !== i || s.at < from) continue;
      answers[s.status] = (answers[s.status] ?? 0) + 1;
      firstMs[s.status] ??= s.at - from;
    }
    out.push({
      session: i,
      record:
        record && 'error' in record
          ? record.error
          : record
            ? { dueInS: record.expires_at! - Math.floor(Date.now() / 1000), version: record.version }
            : null,
      lockMs,
      answers,
      firstMs,
    });
  }
  return out;
}

/** Waits until every pre-established session has been refreshed; on a timeout, puts what {@link diagnose} sees in the report as `label`. */
async function untilEverySessionRefreshed(refreshesBefore: number, samples: Sample[], from: number, label: string) {
  try {
    await until('every session refreshed', async () => env.provider.counters.refreshGrants - refreshesBefore >= SESSIONS, 30000);
  } catch (err) {
    report[label] = {
      refreshes: env.provider.counters.refreshGrants - refreshesBefore,
      sessions: await diagnose(samples, from),
      refreshFailed: await refreshFailures(),
    };
    throw err;
  }
}

/**
 * Why refreshes failed during the current test, in this process and in each child, for the report: never throws
 * (a child that does not answer is reported as such), so it cannot hide the failure it is there to explain.
 */
async function refreshFailures() {
  const children = await childFailures().then(
    (c) => c.refreshFailedReasons,
    (err: unknown) => `children did not answer: ${(err as Error)?.message ?? err}`,
  );
  return { thisProcess: { ...inProcessRefreshFailed }, children };
}

/** The sessions that got anything but 200 from `from` on, and why refreshes failed: for the report, before any assertion. */
async function troubles(samples: Sample[], from: number) {
  return {
    sessionsAnsweredOtherThan200: (await diagnose(samples, from)).filter((d) => Object.keys(d.answers).some((k) => k !== '200')),
    refreshFailed: await refreshFailures(),
  };
}

async function childFailures() {
  const all = await Promise.all(children.map((c) => c.events()));
  return {
    refreshFailed: all.reduce((n, e) => n + e.refresh_failed, 0),
    refreshFailedReasons: all.map((e) => e.refreshFailedReasons),
    errors5xx: all.map((e) => e.errors5xx),
    errorsAfterResponse: [errorsAfterResponse, ...all.map((e) => e.afterResponse)],
  };
}

/** ms from `from` to the last 503 seen (how long app processes took to see the new topology); 0 when none after it. */
function last503(samples: Sample[], from: number) {
  return Math.max(0, ...samples.filter((s) => s.status === 503).map((s) => s.at - from));
}

function expectNo500(samples: Sample[]) {
  const bad = samples.filter((s) => s.status !== 200 && s.status !== 302 && !(s.status === 503 && s.retryAfter));
  expect(bad.map((s) => `${s.kind} ${s.status}${s.error ? ` ${s.error}` : ''}`)).toEqual([]);
}

describe('Failover of a Redis Cluster master under traffic (issue 17)', () => {
  it('O1: CLUSTER FAILOVER on a replica: no 500, 503 + Retry-After or success, no session lost, exactly one refresh per session, no grant revoked', async () => {
    const topo = await cluster.topology();
    const [master, replicas] = [...topo.masters][0]!;
    const refreshesBefore = env.provider.counters.refreshGrants;
    const errorsBefore = env.provider.counters.refreshErrors;
    inProcessRefreshFailed = {};
    const traffic = startTraffic(env, sessions, apps(), { apiWorkers: 8 });
    const probe = startWriteProbe(client, `probe:o1:${process.pid}:`);
    try {
      await until('some traffic', async () => traffic.samples.length > 20, 20000);
      // Tokens fall due one by one across the switch: refreshes run before, during and after it.
      await scheduleExpiry(300, 120);
      const started = Date.now();
      await cluster.failover(replicas[0]!);
      await cluster.waitHealthy(30000, { replicas: true });
      const ended = Date.now();
      // Let the last expiries and the traffic after the switch run: every session has been refreshed.
      await until('traffic after the switch', async () => traffic.samples.filter((s) => s.at > ended + 1500).length > 30, 30000);
      await untilEverySessionRefreshed(refreshesBefore, traffic.samples, started, 'clusterFailoverDiagnostics');
      await traffic.stop();
      report.clusterFailover = {
        ackedWrites: await probe.stop(),
        switchMs: ended - started,
        before: tally(traffic.samples, 0, started),
        during: tally(traffic.samples, started, ended),
        after: tally(traffic.samples, ended),
        last503AfterSwitchEndMs: last503(traffic.samples, ended),
        ...(await troubles(traffic.samples, started)),
      };
    } finally {
      await traffic.stop();
      await probe.stop();
    }
    expectNo500(traffic.samples);
    // A coordinated failover loses no acknowledged write.
    expect((report.clusterFailover as { ackedWrites: { lost: number } }).ackedWrites.lost).toBe(0);
    const established = [...sessions, ...traffic.newSessions.map((s) => s.browser)];
    const lost = await lostSessions(established);
    const refreshes = env.provider.counters.refreshGrants - refreshesBefore;
    Object.assign(report.clusterFailover as object, {
      failedOver: { master, to: replicas[0] },
      sessionsChecked: established.length,
      lostSessions: lost.length,
      refreshes,
      refreshErrors: env.provider.counters.refreshErrors - errorsBefore,
      children: await childFailures(),
    });
    expect(lost).toEqual([]);
    expect(refreshes).toBe(SESSIONS);
    expect(env.provider.counters.refreshErrors - errorsBefore).toBe(0);
    expect((await childFailures()).errors5xx.every((e) => Object.keys(e).length === 0)).toBe(true);
  }, 120000);

  it('O2: a master killed (SIGKILL): no 500 while its replica takes over, sessions the new master has all work, one refresh per session', async () => {
    await cluster.waitHealthy(30000);
    const topo = await cluster.topology();
    const [victim, replicas] = [...topo.masters][1]!;
    const refreshesBefore = env.provider.counters.refreshGrants;
    const errorsBefore = env.provider.counters.refreshErrors;
    inProcessRefreshFailed = {};
    const traffic = startTraffic(env, sessions, apps(), { apiWorkers: 8 });
    const probe = startWriteProbe(client, `probe:o2:${process.pid}:`);
    let killedAt = 0;
    try {
      await until('some traffic', async () => traffic.samples.length > 20, 20000);
      // Tokens fall due only after the kill, so every refresh runs against the cluster without the victim
      // (a refresh write acknowledged by the victim but not replicated would be lost and its refresh token
      // reused: that is Redis's asynchronous replication, measured in the kill case of bench/, not here).
      // One attempt, with a wide margin: scheduling again once the first tokens fell due would rewrite records
      // that a refresh had just replaced, putting a rotated refresh token back, and the next refresh would end
      // that login (a test artefact, seen on a loaded machine with the retry loop this replaced).
      const scheduled = Date.now();
      await scheduleExpiry(FIRST_DUE_MS, 150);
      const scheduledMs = Date.now() - scheduled;
      const tooSlow = (what: string) =>
        new Error(`${what}: the kill must come within ${KILL_BY_MS} ms of scheduling the expiries (scheduling took ${scheduledMs} ms)`);
      await cluster.waitInSync(victim, Math.max(1, KILL_BY_MS - scheduledMs), replicas).catch((err: Error) => {
        throw tooSlow(err.message);
      });
      const readyMs = Date.now() - scheduled;
      report.masterKilledScheduling = { scheduledMs, syncedMs: readyMs - scheduledMs };
      if (readyMs > KILL_BY_MS) throw tooSlow(`scheduling and the replica's sync took ${readyMs} ms`);
      killedAt = Date.now();
      await cluster.kill(victim);
      await cluster.waitPromoted(replicas[0]!, 30000);
      await cluster.waitHealthy(30000, { replicas: false });
      const ended = Date.now();
      await until('traffic after the switch', async () => traffic.samples.filter((s) => s.at > ended + 2000).length > 30, 30000);
      await untilEverySessionRefreshed(refreshesBefore, traffic.samples, killedAt, 'masterKilledDiagnostics');
      await traffic.stop();
      report.masterKilled = {
        ackedWrites: await probe.stop(),
        switchMs: ended - killedAt,
        before: tally(traffic.samples, 0, killedAt),
        during: tally(traffic.samples, killedAt, ended),
        after: tally(traffic.samples, ended),
        last503AfterSwitchEndMs: last503(traffic.samples, ended),
        ...(await troubles(traffic.samples, killedAt)),
      };
    } finally {
      await traffic.stop();
      await probe.stop();
    }
    expectNo500(traffic.samples);
    // Sessions established before the replica was in sync must all be there; logins acknowledged by the
    // victim in the last moment before the kill may be lost (asynchronous replication): counted, not asserted.
    const lostOld = await lostSessions(sessions);
    const recent = traffic.newSessions.filter((s) => s.at > killedAt - 1000);
    const older = traffic.newSessions.filter((s) => s.at <= killedAt - 1000);
    const lostOlder = await lostSessions(older.map((s) => s.browser));
    const lostRecent = await lostSessions(recent.map((s) => s.browser));
    const refreshes = env.provider.counters.refreshGrants - refreshesBefore;
    Object.assign(report.masterKilled as object, {
      killed: victim,
      promoted: replicas[0],
      lostPreEstablished: lostOld.length,
      loginsDuringTraffic: traffic.newSessions.length,
      lostLoginsOlderThan1sBeforeKill: lostOlder.length,
      lostLoginsCompletedFrom1sBeforeKill: `${lostRecent.length} of ${recent.length}`,
      refreshes,
      refreshErrors: env.provider.counters.refreshErrors - errorsBefore,
      children: await childFailures(),
    });
    expect(lostOld).toEqual([]);
    expect(lostOlder).toEqual([]);
    expect(refreshes).toBe(SESSIONS);
    expect(env.provider.counters.refreshErrors - errorsBefore).toBe(0);
    expect((await childFailures()).errors5xx.every((e) => Object.keys(e).length === 0)).toBe(true);
  }, 120000);
});
