import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { MemoryTokenStore, RedisTokenStore, type TokenStore } from '../../lib/index.js';
import { RecordCipher, type TokenRecord } from '../../lib/token-record.js';
import { TokenService } from '../../lib/tokens.js';
import { connectRedis, type Redis } from '../helpers/env.js';

let redis: Redis;
beforeAll(async () => {
  redis = await connectRedis();
});
afterAll(async () => {
  await redis?.quit();
});

const stores: Array<[string, () => TokenStore]> = [
  ['MemoryTokenStore', () => new MemoryTokenStore()],
  ['RedisTokenStore', () => new RedisTokenStore({ client: redis, prefix: `test:stores:${process.pid}:${Math.random()}:` })],
];

describe.each(stores)('%s contract', (_name, make) => {
  it('stores opaque values with a TTL, and get of a missing key is null', async () => {
    const store = make();
    expect(await store.get('s1')).toBeNull();
    await store.set('s1', 'v1', 150);
    expect(await store.get('s1')).toBe('v1');
    await new Promise((r) => setTimeout(r, 250));
    expect(await store.get('s1')).toBeNull();
  });

  it('E19: compare-and-set rejects a stale writer and keeps the newer value', async () => {
    const store = make();
    await store.set('s', 'v1', 60_000);
    expect(await store.replace('s', 'v1', 'v2', 60_000)).toBe(true);
    // A slow writer that read v1 tries to write its result: refused.
    expect(await store.replace('s', 'v1', 'stale', 60_000)).toBe(false);
    expect(await store.get('s')).toBe('v2');
    // A replace of a missing record writes nothing.
    expect(await store.replace('missing', 'v1', 'x', 60_000)).toBe(false);
    expect(await store.get('missing')).toBeNull();
  });

  it('deleteIf deletes only the expected value', async () => {
    const store = make();
    await store.set('s', 'v2', 60_000);
    await store.deleteIf('s', 'v1');
    expect(await store.get('s')).toBe('v2');
    await store.deleteIf('s', 'v2');
    expect(await store.get('s')).toBeNull();
  });

  it('the lock is exclusive, released only by its owner, and expires after its lease', async () => {
    const store = make();
    expect(await store.lock('s', 'a', 200)).toBe(true);
    expect(await store.lock('s', 'b', 200)).toBe(false);
    await store.unlock('s', 'b');
    expect(await store.lock('s', 'b', 200)).toBe(false);
    await store.unlock('s', 'a');
    expect(await store.lock('s', 'b', 200)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(await store.lock('s', 'c', 200)).toBe(true);
  });
  it('a claim is single-use for its lifetime and apart from the refresh lock of the same name', async () => {
    const store = make();
    expect(await store.claim!('tx:k', 150)).toBe(true);
    expect(await store.claim!('tx:k', 150)).toBe(false);
    // The claim and the lock live in different key spaces: neither blocks the other.
    expect(await store.lock('tx:k', 'o', 150)).toBe(true);
    await new Promise((r) => setTimeout(r, 250));
    expect(await store.claim!('tx:k', 150)).toBe(true);
  });
});

/** A TokenStore that delegates to `memory`, with some methods replaced (a third party's store, as it may be written). */
function storeOver(memory: MemoryTokenStore, overrides: Partial<TokenStore> = {}): TokenStore {
  return {
    get: (sid) => memory.get(sid),
    set: (sid, v, ttl) => memory.set(sid, v, ttl),
    replace: (sid, e, v, ttl) => memory.replace(sid, e, v, ttl),
    deleteIf: (sid, e) => memory.deleteIf(sid, e),
    delete: (sid) => memory.delete(sid),
    lock: (sid, owner, ttl) => memory.lock(sid, owner, ttl),
    unlock: (sid, owner) => memory.unlock(sid, owner),
    ...overrides,
  };
}

/** The package's TokenService on `store`. */
function serviceOn(store: TokenStore): TokenService {
  const cipher = new RecordCipher(['store-test-key-0123456789-abcdefghijklmnop'], { issuer: 'https://issuer.test', clientId: 'c' });
  return new TokenService({ tokenStore: store, storeTimeout: 1000, logger: { warn() {}, error() {} } } as never, cipher);
}

describe('single-use claims of login states', () => {
  it('RedisTokenStore writes claims under {prefix}claim:{key}, never a lock key', async () => {
    const prefix = `test:claim:${process.pid}:${Math.random()}:`;
    const store = new RedisTokenStore({ client: redis, prefix });
    expect(await store.claim('tx:abc', 5000)).toBe(true);
    expect(await redis.keys(`${prefix}*`)).toEqual([`${prefix}claim:{tx:abc}`]);
  });

  it('a TokenStore written before claim() existed still claims through lock(key, "1", ttl)', async () => {
    const memory = new MemoryTokenStore();
    const legacy = storeOver(memory, { lock: jest.fn((key: string, owner: string, ttl: number) => memory.lock(key, owner, ttl)) });
    const service = serviceOn(legacy);
    expect(await service.claimOnce('tx:1', 5000)).toBe(true);
    expect(await service.claimOnce('tx:1', 5000)).toBe(false);
    expect(legacy.lock).toHaveBeenCalledWith('tx:1', '1', 5000);
  });
});

describe('the refresh lock with the record in one step (lockAndGet, rule 8: the record re-read once the lock is taken; issue 14 P3)', () => {
  it('RedisTokenStore.lockAndGet takes the lock as lock() does and, only when it took it, returns the record', async () => {
    const store = new RedisTokenStore({ client: redis, prefix: `test:lockget:${process.pid}:${Math.random()}:` });
    // No record: taken, no value.
    expect(await store.lockAndGet('none', 'a', 5000)).toEqual({ locked: true, value: null });
    await store.set('s', 'v1', 60_000);
    expect(await store.lockAndGet('s', 'a', 5000)).toEqual({ locked: true, value: 'v1' });
    // Held: not taken, and nothing of the record is handed out.
    expect(await store.lockAndGet('s', 'b', 5000)).toEqual({ locked: false, value: null });
    expect(await store.lock('s', 'b', 5000)).toBe(false);
    // The same lock as lock()/unlock(): released by its owner only, with a lease.
    await store.unlock('s', 'b');
    expect(await store.lockAndGet('s', 'b', 5000)).toEqual({ locked: false, value: null });
    await store.unlock('s', 'a');
    expect(await store.lockAndGet('s', 'b', 150)).toEqual({ locked: true, value: 'v1' });
    await new Promise((r) => setTimeout(r, 250));
    expect(await store.lock('s', 'c', 5000)).toBe(true);
    // Named instances' keys: the lock and the record of one session and name.
    await store.set('gh:{s2}', 'v2', 60_000);
    expect(await store.lockAndGet('gh:{s2}', 'a', 5000)).toEqual({ locked: true, value: 'v2' });
    expect(await store.lockAndGet('s2', 'a', 5000)).toEqual({ locked: true, value: null });
  });

  it('TokenService.lockAndGet on a store without it: lock, then a read; a failed read releases the lock again', async () => {
    const memory = new MemoryTokenStore();
    let failReads = false;
    const service = serviceOn(storeOver(memory, { get: (sid) => (failReads ? Promise.reject(new Error('read failed')) : memory.get(sid)) }));
    await memory.set('sid', 'raw-1', 60_000);
    expect(await service.lockAndGet('sid', 'a', 5000)).toEqual({ locked: true, raw: 'raw-1' });
    expect(await service.lockAndGet('sid', 'b', 5000)).toEqual({ locked: false, raw: null });
    await service.unlock('sid', 'a');
    failReads = true;
    await expect(service.lockAndGet('sid', 'b', 5000)).rejects.toThrow('Token store read failed.');
    // Released: another owner takes it at once (not after the 5 s lease).
    expect(await memory.lock('sid', 'c', 5000)).toBe(true);
  });

  it('TokenService.lockAndGet hands out no record when a custom store reports the lock not taken but a value', async () => {
    const memory = new MemoryTokenStore();
    await memory.set('sid', 'raw-1', 60_000);
    // A store's lockAndGet that returns the record whatever happened to the lock (a bug in someone's store).
    const service = serviceOn(
      storeOver(memory, { lockAndGet: async (sid, owner, ttl) => ({ locked: await memory.lock(sid, owner, ttl), value: await memory.get(sid) }) }),
    );
    expect(await service.lockAndGet('sid', 'a', 5000)).toEqual({ locked: true, raw: 'raw-1' });
    // Held by a: b is told so, and gets nothing it could take for a record read under the lock.
    expect(await service.lockAndGet('sid', 'b', 5000)).toEqual({ locked: false, raw: null });
  });
});

describe('TokenService compare-and-set (rule 8)', () => {
  it('E20: a write based on an old version is rejected and the newer tokens remain', async () => {
    const store = new RedisTokenStore({ client: redis, prefix: `test:cas:${process.pid}:` });
    const cipher = new RecordCipher(['cas-test-key-0123456789-abcdefghijklmnop'], { issuer: 'https://issuer.test', clientId: 'c' });
    const cfg = { tokenStore: store, storeTimeout: 1000, tokenTtl: 3600, httpTimeout: 1000, refreshLeeway: 60, logger: { warn() {}, error() {} } };
    const service = new TokenService(cfg as never, cipher);
    const v1: TokenRecord = { version: 1, access_token: 'at1', token_type: 'bearer', updated_at: 1 };
    const first = await service.write('sid', v1);
    const newer = await service.replace('sid', first.raw, { ...v1, version: 2, access_token: 'at2' });
    expect(newer).not.toBeNull();
    const stale = await service.replace('sid', first.raw, { ...v1, version: 2, access_token: 'stale' });
    expect(stale).toBeNull();
    expect((await service.read('sid'))!.record.access_token).toBe('at2');
  });
});

describe('MemoryTokenStore', () => {
  it('warns when used with NODE_ENV=production', () => {
    const saved = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    const warn = jest.fn();
    try {
      new MemoryTokenStore({ warn });
    } finally {
      process.env.NODE_ENV = saved;
    }
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('MemoryTokenStore is in use with NODE_ENV=production'));
  });
});

describe('RedisTokenStore and process safety', () => {
  it('oauth() gives a client without an error listener one, so a socket error never crashes the process', async () => {
    const { createClient } = await import('redis');
    const { oauth } = await import('../../lib/index.js');
    const client = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
    expect(client.listenerCount('error')).toBe(0);
    const lines: string[] = [];
    const auth = oauth({
      authorizationEndpoint: 'http://127.0.0.1:1/a',
      tokenEndpoint: 'http://127.0.0.1:1/t',
      clientId: 'c',
      clientSecret: 's',
      redirectUri: 'http://localhost:3000/oauth/callback',
      apiBaseUrl: 'http://127.0.0.1:2',
      tokenStore: new RedisTokenStore({ client }),
      encryptionKey: 'Dj4oXkI3HzxwBTcyzXIEzGiQlWvlrGH4/v58F0P8OGY=',
      logger: { warn: (m) => lines.push(m), error: (m) => lines.push(m) },
    });
    try {
      expect(client.listenerCount('error')).toBe(1);
      client.emit('error', new Error('ECONNRESET'));
      expect(lines.join('\n')).toContain('token store connection error');
    } finally {
      auth.close();
    }
  });

  it('a disconnected client is refused at once instead of queueing commands', async () => {
    const { createClient } = await import('redis');
    const client = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
    const store = new RedisTokenStore({ client });
    const started = Date.now();
    await expect(store.get('sid')).rejects.toThrow('Redis is not connected');
    expect(Date.now() - started).toBeLessThan(100);
  });
});
