import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createClient, createCluster } from 'redis';
import { RedisStore } from 'connect-redis';
import { RedisTokenStore } from '../../lib/index.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { startCluster, type OwnCluster } from '../helpers/redis-cluster.js';

let cluster: OwnCluster;
let client: ReturnType<typeof createCluster>;
let env: TestEnv;
const prefix = `cluster-test:${process.pid}:`;

beforeAll(async () => {
  cluster = await startCluster();
  client = createCluster({ rootNodes: cluster.rootNodes });
  client.on('error', () => {});
  await client.connect();
  env = await createEnv({
    tokenStore: new RedisTokenStore({ client, prefix }),
    oauth: { tokenCacheMs: 0 }, // every call goes to the cluster
    sessionStore: new RedisStore({ client, prefix: `${prefix}sess:` }),
  });
}, 60000);
afterAll(async () => {
  await env?.close();
  await client?.close().catch(() => {});
  await cluster?.stop();
});

const json = { accept: 'application/json' };

describe('Redis Cluster', () => {
  it('F17: login, API calls, a refresh under 50 concurrent calls (one refresh), and logout on a 3-master cluster', async () => {
    const { browser, callback } = await env.login();
    expect(callback.status).toBe(302);
    const sid = env.sid(browser);
    expect(await client.get(`${prefix}tok:{${sid}}`)).not.toBeNull();
    // Token record and refresh lock share a hash tag: the same slot, whatever the session id.
    const node = createClient({ url: cluster.rootNodes[0]!.url });
    await node.connect();
    try {
      expect(await node.clusterKeySlot(`${prefix}lock:{${sid}}`)).toBe(await node.clusterKeySlot(`${prefix}tok:{${sid}}`));
    } finally {
      await node.quit();
    }
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);

    const record = (await env.readRecord(sid))!;
    await env.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5, updated_at: 0 });
    const before = env.provider.counters.refreshGrants;
    const results = await Promise.all(Array.from({ length: 50 }, () => browser.request(`${env.appUrl}/api/me`, { headers: json })));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(env.provider.counters.refreshGrants - before).toBe(1);

    const out = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: env.appUrl } });
    expect(out.status).toBe(302);
    expect(await client.get(`${prefix}tok:{${sid}}`)).toBeNull();
    expect(await client.get(`${prefix}sess:${sid}`)).toBeNull();
  });
});
