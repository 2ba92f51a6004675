import { spawn, type ChildProcess } from 'node:child_process';
import type { Express, NextFunction, Request, Response } from 'express';
import path from 'node:path';
import { TestBrowser, authorizeAtProvider } from './browser.js';
import type { TestEnv } from './env.js';
import { SESSION_SECRET } from './env.js';
import { CLIENT_ID, CLIENT_SECRET } from './provider.js';

/** How a child app reaches Redis: a cluster (root nodes) or Sentinel. */
export type HaRedis =
  | { mode: 'cluster'; rootNodes: Array<{ url: string }> }
  | { mode: 'sentinel'; sentinelName: string; sentinelRootNodes: Array<{ host: string; port: number }> };

export interface HaChild {
  url: string;
  process: ChildProcess;
  events(): Promise<{
    refresh: number;
    refresh_failed: number;
    refreshFailedReasons: Record<string, number>;
    errors5xx: Record<string, number>;
    afterResponse: Record<string, number>;
    redisErrors: Record<string, number>;
  }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** An app process (spec/helpers/child-app-ha.mjs, built from dist/) on a replicated Redis, sharing `env`'s keys and prefix. */
/** Starts `count` children in parallel; if one fails, the others are stopped before the error is thrown. */
export async function startHaChildren(count: number, env: TestEnv, redis: HaRedis, extra: { httpTimeout?: number; storeTimeout?: number } = {}) {
  const settled = await Promise.allSettled(Array.from({ length: count }, () => startHaChild(env, redis, extra)));
  const started = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((c) => c.kill('SIGKILL')));
    throw failed.reason;
  }
  return started;
}

export async function startHaChild(env: TestEnv, redis: HaRedis, extra: { httpTimeout?: number; storeTimeout?: number } = {}): Promise<HaChild> {
  const config = {
    issuer: env.provider.issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUri: env.options.redirectUri,
    scope: env.options.scope,
    apiUrl: env.api.url,
    prefix: env.prefix,
    encryptionKey: env.options.encryptionKey,
    sessionSecret: SESSION_SECRET,
    ...redis,
    ...extra,
  };
  const child = spawn(process.execPath, [path.resolve('spec/helpers/child-app-ha.mjs')], {
    env: { ...process.env, CHILD_CONFIG: JSON.stringify(config), NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  // If the test process goes away without its afterAll, the child goes too.
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  child.once('exit', () => process.off('exit', onExit));
  const kill = (signal: NodeJS.Signals = 'SIGKILL') =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`HA child app did not start: ${stderr.slice(0, 500)}`)), 30000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`HA child app exited (${code}): ${stderr.slice(0, 1000)}`));
    });
  }).catch(async (err) => {
    await kill();
    throw err;
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    process: child,
    kill,
    events: async () => (await fetch(`${url}/__events`, { signal: AbortSignal.timeout(10000) })).json() as never,
  };
}

/** One answer seen by the traffic driver. */
export interface Sample {
  at: number;
  kind: 'api' | 'login' | 'callback';
  status: number;
  retryAfter: boolean;
  session?: number;
  /** Why there was no HTTP answer (status 0). */
  error?: string;
}

export interface Traffic {
  samples: Sample[];
  /** Browsers of logins completed during the traffic (callback 302), with the time the callback answered. */
  newSessions: Array<{ browser: TestBrowser; at: number }>;
  stop(): Promise<void>;
}

const json = { accept: 'application/json' };

/** Calls `base`/api/me with the session cookie the browser holds for the env's app (sessions are shared through Redis). */
export async function callApi(env: TestEnv, browser: TestBrowser, base: string) {
  const cookie = browser.cookies(env.appUrl).get('connect.sid');
  const res = await fetch(`${base}/api/me`, {
    headers: { ...json, ...(cookie ? { cookie: `connect.sid=${cookie}` } : {}) },
    redirect: 'manual',
    signal: AbortSignal.timeout(20000),
  });
  await res.text();
  return {
    status: res.status,
    retryAfter: !!res.headers.get('retry-after'),
    setCookie: res.headers.getSetCookie().some((c) => c.startsWith('connect.sid=')),
  };
}

/**
 * Mixed traffic until stopped: `apiWorkers` loops of API calls (a random session on a random app) and one
 * login loop through the env's app (its /oauth/login, the provider's pages, the callback).
 */
/** A transport error from a reused keep-alive socket the server closed as idle (no response was received). */
function isKeepAliveRace(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code === 'ECONNRESET' || cause?.code === 'UND_ERR_SOCKET' || /other side closed/i.test(cause?.message ?? '');
}

export function startTraffic(env: TestEnv, sessions: TestBrowser[], apps: string[], opts: { apiWorkers?: number; logins?: boolean } = {}): Traffic {
  const samples: Sample[] = [];
  const newSessions: Traffic['newSessions'] = [];
  let running = true;
  const isCallback = (u: string) => u.startsWith(`${env.appUrl}/oauth/callback`);
  const apiLoop = async () => {
    while (running) {
      const session = Math.floor(Math.random() * sessions.length);
      const app = apps[Math.floor(Math.random() * apps.length)]!;
      try {
        let r;
        try {
          r = await callApi(env, sessions[session]!, app);
        } catch (err) {
          // A reused keep-alive connection that the app closed as idle at the moment the client sent on it
          // (ECONNRESET / "other side closed", before any response): a client-side race that browsers answer
          // by retrying an idempotent request once. Anything else, or a second failure, is counted.
          if (!isKeepAliveRace(err)) throw err;
          r = await callApi(env, sessions[session]!, app);
        }
        samples.push({ at: Date.now(), kind: 'api', status: r.status, retryAfter: r.retryAfter, session });
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
        samples.push({
          at: Date.now(),
          kind: 'api',
          status: 0,
          retryAfter: false,
          session,
          error: `${String((err as Error)?.message ?? err).slice(0, 200)}${cause ? ` (${cause.code ?? ''} ${cause.message ?? ''})` : ''}`,
        });
      }
    }
  };
  const loginLoop = async () => {
    while (running) {
      const browser = new TestBrowser();
      try {
        const start = await browser.request(`${env.appUrl}/oauth/login`);
        samples.push({ at: Date.now(), kind: 'login', status: start.status, retryAfter: !!start.headers.get('retry-after') });
        if (start.status !== 302 || !start.location) continue;
        const cb = await authorizeAtProvider(browser, start.location, 'alice', isCallback);
        const res = await browser.request(cb);
        samples.push({ at: Date.now(), kind: 'callback', status: res.status, retryAfter: !!res.headers.get('retry-after') });
        if (res.status === 302) newSessions.push({ browser, at: Date.now() });
      } catch (err) {
        samples.push({ at: Date.now(), kind: 'login', status: 0, retryAfter: false, error: String((err as Error)?.message ?? err).slice(0, 300) });
      }
    }
  };
  const loops = [...Array.from({ length: opts.apiWorkers ?? 8 }, () => apiLoop()), ...(opts.logins === false ? [] : [loginLoop()])];
  return {
    samples,
    newSessions,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Counts of statuses per kind within [from, to). */
export function tally(samples: Sample[], from = 0, to = Infinity): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const s of samples) {
    if (s.at < from || s.at >= to) continue;
    const k = (out[s.kind] ??= {});
    const key = s.status === 503 && !s.retryAfter ? '503-no-retry-after' : String(s.status);
    k[key] = (k[key] ?? 0) + 1;
  }
  return out;
}

/** A client with plain SET/GET (node-redis client, cluster or sentinel). */
interface KeyValue {
  set(key: string, value: string, options?: { PX?: number }): Promise<unknown>;
  get(key: string): Promise<unknown>;
}

/**
 * Acknowledged-write probe: writes `prefix<n>` one after the other (each awaited) until stopped, then reads
 * every acknowledged key back. What a failover loses of acknowledged writes (Redis replication is
 * asynchronous) shows up as `lost`.
 */
export function startWriteProbe(client: KeyValue, prefix: string) {
  const acked: string[] = [];
  const ackedAt: number[] = [];
  let failed = 0;
  let running = true;
  const loop = (async () => {
    for (let n = 0; running; n++) {
      const key = `${prefix}${n}`;
      try {
        await client.set(key, String(n), { PX: 600000 });
        acked.push(key);
        ackedAt.push(Date.now());
      } catch {
        failed++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  let result: Promise<{ acked: number; failed: number; lost: number; lostKeys: string[]; lostAt: number[] }> | undefined;
  const check = async () => {
    running = false;
    await loop;
    const lostKeys: string[] = [];
    const lostAt: number[] = [];
    for (const [i, key] of acked.entries()) {
      let value: unknown;
      for (let a = 0; a < 20; a++) {
        try {
          value = await client.get(key);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      if (value === null || value === undefined) {
        lostKeys.push(key);
        lostAt.push(ackedAt[i]!);
      }
    }
    // lostAt: when the first and the last lost write were acknowledged (epoch ms).
    const span = lostAt.length ? [Math.min(...lostAt), Math.max(...lostAt)] : [];
    return { acked: acked.length, failed, lost: lostKeys.length, lostKeys: lostKeys.slice(0, 5), lostAt: span };
  };
  return {
    acked,
    /** Stops the writer and reads every acknowledged key back (once; later calls answer the same). */
    stop: () => (result ??= check()),
  };
}

/** Errors that reached the in-process app's error handlers after its response was sent, by message. */
export const errorsAfterResponse: Record<string, number> = {};

/**
 * For `createEnv({ routes })`: an error handler right after the session and oauth middleware that drops
 * errors arriving once the response is out (express-session reports a failed `touch`, which it runs when
 * the response ends, through `next(err)`; answering again would make Express destroy the socket).
 */
export function dropErrorsAfterResponse(app: Express): void {
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (!res.headersSent) return next(err);
    const k = `${(err as Error)?.name}: ${String((err as Error)?.message).slice(0, 120)}`;
    errorsAfterResponse[k] = (errorsAfterResponse[k] ?? 0) + 1;
  });
}
