/**
 * Issue 17 part 1, Sentinel: a master, one replica and 3 sentinels; node-redis `createSentinel` carries the
 * sessions (connect-redis) and the token records (RedisTokenStore) for 4 app processes (this one + 3
 * children built from dist/); `SENTINEL FAILOVER` once under traffic. CI-only suite (`npm run test:ops`).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSentinel } from 'redis';
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
} from '../helpers/ha-traffic.js';
import { startSentinel, until, type SentinelSetup } from '../helpers/redis-replicated.js';

const SESSIONS = 12;
const STORE_TIMEOUT = 1000;

let setup: SentinelSetup;
let client: ReturnType<typeof createSentinel>;
let env: TestEnv;
let children: HaChild[] = [];
const sessions: TestBrowser[] = [];
const report: Record<string, unknown> = {};

beforeAll(async () => {
  setup = await startSentinel('eoc');
  const socket = { connectTimeout: 1000, reconnectStrategy: (n: number) => Math.min(50 * n, 500) };
  client = createSentinel({
    name: setup.name,
    sentinelRootNodes: setup.sentinelRootNodes,
    nodeClientOptions: { socket, disableOfflineQueue: true },
    sentinelClientOptions: { socket },
    scanInterval: 500,
  });
  client.on('error', () => {});
  await client.connect();
  env = await createEnv({
    redis: client as never,
    oauth: { tokenCacheMs: 0, storeTimeout: STORE_TIMEOUT, httpTimeout: 5000 },
    routes: dropErrorsAfterResponse,
  });
  const redis = { mode: 'sentinel' as const, sentinelName: setup.name, sentinelRootNodes: setup.sentinelRootNodes };
  children = await startHaChildren(3, env, redis, { storeTimeout: STORE_TIMEOUT });
  for (let i = 0; i < SESSIONS; i++) sessions.push((await env.login()).browser);
}, 120000);

afterAll(async () => {
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await env?.close();
  await client?.destroy().catch(() => {});
  await setup?.stop();
  const file = path.join(os.tmpdir(), `eoc-sentinel-report-${process.pid}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2));
  process.stdout.write(`\nsentinel report (${file}):\n${JSON.stringify(report, null, 2)}\n`);
}, 60000);

const apps = () => [env.appUrl, ...children.map((c) => c.url)];

async function lostSessions(browsers: TestBrowser[]) {
  const lost: number[] = [];
  for (let i = 0; i < browsers.length; i++) {
    let status = 0;
    for (let a = 0; a < 40; a++) {
      status = (await callApi(env, browsers[i]!, apps()[i % apps().length]!)).status;
      if (status !== 503) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    if (status !== 200) lost.push(i);
  }
  return lost;
}

describe('Redis Sentinel failover under traffic (issue 17)', () => {
  it('S1: SENTINEL FAILOVER: no 500, 503 + Retry-After or success, no session lost; refreshes after the old master is demoted: one per session, no grant revoked', async () => {
    const refreshesBefore = env.provider.counters.refreshGrants;
    const errorsBefore = env.provider.counters.refreshErrors;
    const traffic = startTraffic(env, sessions, apps(), { apiWorkers: 8 });
    const probe = startWriteProbe(client, `probe:s1:${process.pid}:`);
    const oldMaster = (await setup.currentMaster())!;
    let started = 0;
    let ended: number;
    let demoted = 0;
    try {
      await until('some traffic', async () => traffic.samples.length > 20, 20000);
      await setup.waitInSync();
      started = Date.now();
      const newMaster = await setup.failover(30000);
      ended = Date.now();
      // Sentinel's failover is not coordinated: the old master takes writes until the sentinels turn it
      // into a replica, and what it took meanwhile is discarded (measured by the probe). A token refresh
      // written there is lost, its rotated refresh token is used again, and the provider revokes the grant
      // (seen in a run: 12 of 12 refreshes in that window). So tokens fall due only once it is demoted.
      await setup.waitDemoted(oldMaster, 30000);
      demoted = Date.now();
      for (let i = 0; i < sessions.length; i++) {
        const sid = env.sid(sessions[i]!);
        const record = (await env.readRecord(sid))!;
        const due = Math.ceil((Date.now() + 300 + i * 150) / 1000);
        await env.writeRecord(sid, { ...record, expires_at: due, updated_at: due });
      }
      report.sentinelFailover = { newMaster, switchMs: ended - started, oldMasterDemotedMs: demoted - started };
      await until('every session refreshed', async () => env.provider.counters.refreshGrants - refreshesBefore >= SESSIONS, 30000);
      await until('traffic after the switch', async () => traffic.samples.filter((s) => s.at > demoted + 2000).length > 30, 30000);
    } finally {
      await traffic.stop();
      const acked = await probe.stop();
      (report.sentinelFailover as Record<string, unknown>) ??= {};
      (report.sentinelFailover as Record<string, unknown>).ackedWrites = {
        ...acked,
        lostAt: acked.lostAt.map((t) => `${t - started} ms after SENTINEL FAILOVER`),
      };
    }
    const bad = traffic.samples.filter((s) => s.status !== 200 && s.status !== 302 && !(s.status === 503 && s.retryAfter));
    // Logins completed before the failover started (the replica was in sync) must all be there; logins
    // acknowledged by the old master during the window may be lost: counted, not asserted.
    const lost = await lostSessions([...sessions, ...traffic.newSessions.filter((s) => s.at < started - 1000).map((s) => s.browser)]);
    const inWindow = traffic.newSessions.filter((s) => s.at >= started - 1000 && s.at <= demoted);
    const lostInWindow = await lostSessions(inWindow.map((s) => s.browser));
    const childEvents = await Promise.all(children.map((c) => c.events()));
    const children5xx = childEvents.map((e) => e.errors5xx);
    const refreshes = env.provider.counters.refreshGrants - refreshesBefore;
    Object.assign(report.sentinelFailover as object, {
      before: tally(traffic.samples, 0, started),
      during: tally(traffic.samples, started, demoted),
      after: tally(traffic.samples, demoted),
      last503AfterDemotionMs: Math.max(0, ...traffic.samples.filter((s) => s.status === 503).map((s) => s.at - demoted)),
      sentinelSwitches: setup.switches(),
      lostSessions: lost.length,
      lostLoginsInWindow: `${lostInWindow.length} of ${inWindow.length}`,
      refreshes,
      refreshErrors: env.provider.counters.refreshErrors - errorsBefore,
      children5xx,
      errorsAfterResponse: [errorsAfterResponse, ...childEvents.map((e) => e.afterResponse)],
    });
    expect(bad.map((s) => `${s.kind} ${s.status}${s.error ? ` ${s.error}` : ''}`)).toEqual([]);
    expect(lost).toEqual([]);
    expect(refreshes).toBe(SESSIONS);
    expect(env.provider.counters.refreshErrors - errorsBefore).toBe(0);
    expect(children5xx.every((e) => Object.keys(e).length === 0)).toBe(true);
  }, 120000);
});
