import { expect } from '@jest/globals';
import type { BrowserResponse, TestBrowser } from './browser.js';
import type { TestEnv } from './env.js';
import { CLIENT_SECRET } from './provider.js';

/** What must survive a rejected request: the victim's record, its session, and the provider's token endpoint untouched. */
export interface Snapshot {
  sid: string;
  raw: string | null;
  tokenRequests: number;
  secrets: string[];
}

export async function snapshot(env: TestEnv, browser: TestBrowser): Promise<Snapshot> {
  const sid = env.sid(browser);
  const raw = await env.rawRecord(sid);
  const record = await env.readRecord(sid);
  const secrets = [CLIENT_SECRET, encodeURIComponent(CLIENT_SECRET)];
  if (record)
    secrets.push(record.access_token, ...(record.refresh_token ? [record.refresh_token] : []), ...(record.id_token ? [record.id_token] : []));
  return { sid, raw, tokenRequests: env.provider.counters.tokenRequests, secrets };
}

/**
 * True for a Set-Cookie that removes the session cookie (empty value, past expiry or Max-Age=0). A renewed
 * expiry of the same session (express-session re-sends the cookie of a session with a `maxAge`) is not a
 * loss; a replaced session id is caught by comparing `env.sid(browser)` before and after.
 */
export const clearsSession = (setCookie: string) => {
  if (!/^connect\.sid=/.test(setCookie)) return false;
  const [pair, ...attrs] = setCookie.split(';');
  if (pair!.slice('connect.sid='.length).trim() === '') return true;
  return attrs.some((a) => /^\s*max-age=0/i.test(a) || (/^\s*expires=/i.test(a) && new Date(a.split('=')[1]!).getTime() <= Date.now()));
};

/**
 * The "nothing lost" checks of security.md: no session cookie cleared or replaced, the stored token
 * record unchanged, the token endpoint not called (unless `tokenRequests` says how many), the session
 * still works against the API, and no token or secret in the response or the logs.
 */
export async function expectNothingLost(
  env: TestEnv,
  browser: TestBrowser,
  before: Snapshot,
  res: BrowserResponse,
  opts: { tokenRequests?: number } = {},
): Promise<void> {
  expect(res.setCookies.filter(clearsSession)).toEqual([]);
  expect(env.provider.counters.tokenRequests - before.tokenRequests).toBe(opts.tokenRequests ?? 0);
  expect(env.sid(browser)).toBe(before.sid);
  expect(await env.rawRecord(before.sid)).toBe(before.raw);
  const me = await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
  expect(me.status).toBe(200);
  expectNoSecrets(env, before.secrets, [res.body, JSON.stringify(Object.fromEntries(res.headers)), me.body]);
}

/** No secret appears in the given texts nor in any captured log line. */
export function expectNoSecrets(env: TestEnv, secrets: string[], texts: string[] = []): void {
  const haystack = [...texts, ...env.logger.lines].join('\n');
  for (const s of secrets) if (s) expect(haystack.includes(s) ? `secret leaked: ${s.slice(0, 6)}…` : 'clean').toBe('clean');
}

/** Starts a login and returns the provider authorization URL and its state (without visiting the provider). */
export async function beginLogin(
  env: TestEnv,
  browser: TestBrowser,
  returnTo?: string,
): Promise<{ authUrl: URL; state: string; response: BrowserResponse }> {
  const q = returnTo === undefined ? '' : `?returnTo=${encodeURIComponent(returnTo)}`;
  const response = await browser.request(`${env.appUrl}/oauth/login${q}`);
  expect(response.status).toBe(302);
  const authUrl = new URL(response.location!);
  return { authUrl, state: authUrl.searchParams.get('state')!, response };
}

/** A callback URL for this app with the given raw query. */
export const callbackUrl = (env: TestEnv, query: string) => `${env.appUrl}/oauth/callback?${query}`;

/** The private members of JWKs (and the body lines of PEMs): what must never appear in a response, log or event. */
export function privateKeySecrets(keys: Array<Record<string, unknown> | string>): string[] {
  return keys.flatMap((k) =>
    typeof k === 'string'
      ? k.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'))
      : ['d', 'p', 'q', 'dp', 'dq', 'qi'].map((m) => k[m]).filter((v): v is string => typeof v === 'string'),
  );
}
