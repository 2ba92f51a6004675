/**
 * The refresh waiter's clock (lib/refresh.ts), on fake timers so that it is exact on any machine: a request
 * waiting for a lock that another process holds and never releases gives up when a live holder would have
 * finished, not one of its pauses later. Fakes behind our own interfaces: an in-memory token store, an
 * authorization server that must not be called.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { RecordCipher, type TokenRecord } from '../../lib/token-record.js';
import { TokenService } from '../../lib/tokens.js';
import { Refresher } from '../../lib/refresh.js';
import { MemoryTokenStore } from '../../lib/token-store/memory.js';
import { RefreshUnavailableError } from '../../lib/errors.js';

const HTTP_TIMEOUT = 1000;
// 2833 ms: not a multiple of the 100 ms between lock attempts, so a pause that ran past the limit would show.
const STORE_TIMEOUT = 111;
/** What lib/refresh.ts derives from the two: a live holder's worst case plus 500 ms. */
const WAIT_LIMIT = 2 * HTTP_TIMEOUT + 3 * STORE_TIMEOUT + 500;

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'], now: 1_800_000_000_000 });
});
afterEach(() => {
  jest.useRealTimers();
});

async function setUp(record: TokenRecord) {
  const store = new MemoryTokenStore();
  const cfg = {
    name: 'waiter-test',
    tokenStore: store,
    httpTimeout: HTTP_TIMEOUT,
    storeTimeout: STORE_TIMEOUT,
    refreshLeeway: 60,
    tokenCacheMs: 0,
    tokenTtl: 3600,
    logger: { warn() {}, error() {} },
  };
  const tokens = new TokenService(
    cfg as never,
    new RecordCipher(['waiter-test-key-0123456789-abcdefghijklmnop'], { issuer: 'https://issuer.test', clientId: 'c' }),
  );
  const loaded = await tokens.write('sid', record);
  let refreshCalls = 0;
  const server = {
    isLoaded: true,
    refresh: () => (refreshCalls++, Promise.reject(new Error('the waiter must not refresh while another process holds the lock'))),
  };
  const refresher = new Refresher(cfg as never, tokens, server as never, { emit() {} } as never);
  // Another process took the lock and never lets go (it died): its lease outlives the wait.
  expect(await store.lock('sid', 'another-process', 60_000)).toBe(true);
  return { refresher, loaded, store, refreshCalls: () => refreshCalls };
}

/** A record whose one-hour access token expires `inSeconds` from now (negative: expired), with a refresh token. */
function oneHourToken(inSeconds: number): TokenRecord {
  const now = Math.floor(Date.now() / 1000);
  return {
    version: 3,
    access_token: 'at-old',
    token_type: 'Bearer',
    refresh_token: 'rt',
    expires_at: now + inSeconds,
    updated_at: now + inSeconds - 3600,
  };
}

/** Advances the fake clock 1 ms at a time until `promise` settles; returns how long that took and its outcome. */
async function settleTime<T>(promise: Promise<T>, limitMs: number) {
  const started = Date.now();
  let outcome: { value?: T; error?: unknown } | undefined;
  promise.then(
    (value) => (outcome = { value }),
    (error: unknown) => (outcome = { error }),
  );
  while (!outcome && Date.now() - started < limitMs) await jest.advanceTimersByTimeAsync(1);
  return { ms: Date.now() - started, outcome };
}

describe('refresh waiter: the give-up time (rule 8; status table: refresh lock not obtained is a 503 and nothing is deleted)', () => {
  it('an expired token: 503 (RefreshUnavailableError) at the give-up time, not a pause later; nothing refreshed or lost', async () => {
    const record = oneHourToken(-1);
    const { refresher, loaded, store, refreshCalls } = await setUp(record);
    const { ms, outcome } = await settleTime(refresher.ensureFresh('sid', loaded), WAIT_LIMIT + 1000);
    expect(outcome?.error).toBeInstanceOf(RefreshUnavailableError);
    // Answered as the status table says for "refresh lock not obtained": 503 with Retry-After.
    expect((outcome?.error as RefreshUnavailableError).status).toBe(503);
    expect((outcome?.error as RefreshUnavailableError).retryAfter).toBeGreaterThan(0);
    expect(refreshCalls()).toBe(0);
    // Pauses grow to 100 ms on a long wait; uncapped, the last one ran up to that far past the limit.
    expect(ms).toBeGreaterThanOrEqual(WAIT_LIMIT);
    expect(ms).toBeLessThanOrEqual(WAIT_LIMIT + 5);
    // The record is as it was, and the other process's lock is still its own.
    expect(await store.get('sid')).toBe(loaded.raw);
    expect(await store.lock('sid', 'someone-else', 1000)).toBe(false);
  });

  it('a token still valid (only inside the refresh leeway): the current token at the give-up time', async () => {
    const record = oneHourToken(30);
    const { refresher, loaded, refreshCalls } = await setUp(record);
    const { ms, outcome } = await settleTime(refresher.ensureFresh('sid', loaded), WAIT_LIMIT + 1000);
    expect(outcome?.error).toBeUndefined();
    expect(outcome?.value?.record.access_token).toBe('at-old');
    expect(refreshCalls()).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(WAIT_LIMIT);
    expect(ms).toBeLessThanOrEqual(WAIT_LIMIT + 5);
  });
});
