import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createClient, createCluster } from 'redis';
import { RedisStore } from 'connect-redis';
import { RedisTokenStore, oauth, requireConnection, type OAuthMiddleware } from '../../lib/index.js';
import { TestBrowser } from '../helpers/browser.js';
import { ENCRYPTION_KEY, createEnv, type TestEnv } from '../helpers/env.js';
import { startGitHubLike, type GitHubLike } from '../helpers/github-like.js';
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

/** The cluster client, seen through a proxy that notes every key the token store reads or scripts on. */
function recordingKeys(target: ReturnType<typeof createCluster>, keys: string[]) {
  return new Proxy(target, {
    get(t, prop) {
      if (prop === 'get') return (key: string) => (keys.push(key), t.get(key));
      if (prop === 'eval') {
        return (script: string, options: { keys: string[]; arguments: string[] }) => (keys.push(...options.keys), t.eval(script, options));
      }
      const value = Reflect.get(t, prop, t) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
    },
  });
}

describe('Redis Cluster, several providers (SECURITY.md rule 15)', () => {
  let gh: GitHubLike;
  let twoEnv: TestEnv;
  let github: OAuthMiddleware;
  const keys: string[] = [];
  const twoPrefix = `cluster-two:${process.pid}:`;

  beforeAll(async () => {
    gh = await startGitHubLike();
    const slot: { github?: OAuthMiddleware } = {};
    const tokenStore = new RedisTokenStore({ client: recordingKeys(client, keys), prefix: twoPrefix });
    twoEnv = await createEnv({
      tokenStore,
      oauth: { tokenCacheMs: 0 },
      sessionStore: new RedisStore({ client, prefix: `${twoPrefix}sess:` }),
      routes: (app) => {
        app.use((req, res, next) => slot.github!(req, res, next));
        app.get('/api/gh/user', requireConnection('github'), async (req, res) => res.json((await req.oauthClients.github!.get('/user')).data));
      },
    });
    github = slot.github = oauth({
      name: 'github',
      role: 'connect',
      requireLogin: true,
      authorizationEndpoint: `${gh.url}/login/oauth/authorize`,
      tokenEndpoint: `${gh.url}/login/oauth/access_token`,
      revocationEndpoint: `${gh.url}/applications/revoke`,
      clientId: 'gh-client',
      clientSecret: 'gh-secret',
      redirectUri: `${twoEnv.appUrl}/oauth/github/callback`,
      scope: ['read:user'],
      apiBaseUrl: gh.url,
      tokenStore,
      tokenCacheMs: 0,
      encryptionKey: ENCRYPTION_KEY,
      logger: twoEnv.logger,
    });
    await github.ready();
  }, 60000);
  afterAll(async () => {
    github?.close();
    await twoEnv?.close();
    await gh?.close();
  });

  it('M22: a login and a GitHub connection on a 3-master cluster: both APIs, a refresh of each under concurrent calls, disconnect, logout; every key of the session (both records, both locks) in one slot', async () => {
    const env = twoEnv;
    const browser = new TestBrowser();
    await env.login(browser);
    gh.expiresIn = 1; // an expiring GitHub App token, with a refresh token
    let connectedAt: number;
    try {
      const { stoppedAt } = await browser.follow(`${env.appUrl}/oauth/github/login`, (u) => u.startsWith(`${env.appUrl}/oauth/github/callback`));
      expect((await browser.request(stoppedAt!)).status).toBe(302);
      connectedAt = Date.now();
    } finally {
      gh.expiresIn = undefined;
    }
    // From here until the storm below, GitHub is refreshed exactly once (on a loaded machine the token may
    // already expire during the first call).
    const ghBefore = gh.refreshes;
    const sid = env.sid(browser);
    const tok = `${twoPrefix}tok:{${sid}}`;
    const ghTok = `${twoPrefix}tok:github:{${sid}}`;
    expect(await client.get(tok)).not.toBeNull();
    expect(await client.get(ghTok)).not.toBeNull();
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    const user = await browser.request(`${env.appUrl}/api/gh/user`, { headers: json });
    expect(user.status).toBe(200);
    expect(JSON.parse(user.body)).toEqual({ login: 'octocat' });

    // Both access tokens expired: concurrent calls to both APIs refresh each provider exactly once.
    const record = (await env.readRecord(sid))!;
    await env.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5, updated_at: 0 });
    // The GitHub token (expires_in 1 s, counted from its exchange) has expired by now.
    while (Date.now() < connectedAt + 2500) await new Promise((r) => setTimeout(r, 50));
    const oidcBefore = env.provider.counters.refreshGrants;
    gh.refreshDelayMs = 100;
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => browser.request(`${env.appUrl}/api/${i % 2 ? 'gh/user' : 'me'}`, { headers: json })),
      );
      expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    } finally {
      gh.refreshDelayMs = 0;
    }
    expect(env.provider.counters.refreshGrants - oidcBefore).toBe(1);
    expect(gh.refreshes - ghBefore).toBe(1);

    // Every key the token store touched for this session (records and refresh locks of both providers) hashes to one slot.
    const mine = [...new Set(keys.filter((k) => k.endsWith(`{${sid}}`)))].sort();
    expect(mine).toEqual([`${twoPrefix}lock:github:{${sid}}`, `${twoPrefix}lock:{${sid}}`, ghTok, tok].sort());
    const node = createClient({ url: cluster.rootNodes[0]!.url });
    await node.connect();
    try {
      const slots = new Set(await Promise.all(mine.map((k) => node.clusterKeySlot(k))));
      expect(slots.size).toBe(1);
    } finally {
      await node.quit();
    }

    // Disconnect: GitHub's record goes, the login's stays and still works.
    const revokedBefore = gh.revoked.length;
    const out = await browser.request(`${env.appUrl}/oauth/github/disconnect`, { method: 'POST', headers: { origin: env.appUrl, ...json } });
    expect(out.status).toBe(204);
    expect(gh.revoked.length - revokedBefore).toBe(2); // its access and refresh tokens
    expect(await client.get(ghTok)).toBeNull();
    expect(await client.get(tok)).not.toBeNull();
    expect((await browser.request(`${env.appUrl}/api/me`, { headers: json })).status).toBe(200);
    expect((await browser.request(`${env.appUrl}/api/gh/user`, { headers: json })).status).toBe(401);

    const logout = await browser.request(`${env.appUrl}/oauth/logout`, { method: 'POST', headers: { origin: env.appUrl } });
    expect(logout.status).toBe(302);
    expect(await client.get(tok)).toBeNull();
    expect(await client.get(`${twoPrefix}sess:${sid}`)).toBeNull();
  }, 60000);
});
