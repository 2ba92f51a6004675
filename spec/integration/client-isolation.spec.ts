import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';

/**
 * Rule 12, "no user state is ever shared": `req.oauthClient` is a per-request facade over one shared axios
 * instance per oauth(). These tests drive two users' calls interleaved through one process and check that
 * every call reached the API with its own user's token, through refreshes, and that a request changing
 * its client's defaults or interceptors changes nothing for anyone else.
 */

let env: TestEnv;
beforeAll(async () => {
  env = await createEnv({
    oauth: { tokenCacheMs: 0 },
    routes: (app) => {
      app.get('/iso/me', async (req, res) => {
        const { data } = await req.oauthClient.get('/v1/me');
        res.json({ expected: req.oauth.user?.sub, saw: data.sub });
      });
      app.get('/iso/mutating', async (req, res) => {
        const sub = String(req.oauth.user?.sub);
        req.oauthClient.defaults.headers.common['x-user'] = sub;
        req.oauthClient.interceptors.request.use((config) => {
          config.headers.set('x-intercepted', sub);
          return config;
        });
        const { data } = await req.oauthClient.get('/v1/headers');
        res.json({ expected: sub, saw: data.sub, headers: data.headers });
      });
      app.get('/iso/plain', async (req, res) => {
        const { data } = await req.oauthClient.get('/v1/headers');
        res.json({ expected: req.oauth.user?.sub, saw: data.sub, headers: data.headers });
      });
    },
  });
});
afterAll(async () => {
  await env?.close();
});

const json = { accept: 'application/json' };

async function expire(browser: TestBrowser): Promise<void> {
  const sid = env.sid(browser);
  const record = (await env.readRecord(sid))!;
  await env.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5, version: record.version + 1 });
}

describe('I: no user state shared between requests or users (rule 12)', () => {
  it("I40: two users x 300 interleaved calls with refreshes in the middle: every call carried its own user's token", async () => {
    const alice = (await env.login(undefined, { user: 'alice' })).browser;
    const bob = (await env.login(undefined, { user: 'bob' })).browser;
    const refreshesBefore = env.provider.counters.refreshGrants;
    const order: TestBrowser[] = [];
    for (let i = 0; i < 300; i++) order.push(alice, bob);
    order.sort(() => Math.random() - 0.5);
    let next = 0;
    let mismatches = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < order.length) {
          const browser = order[next++]!;
          // Expire both users' tokens twice during the run: refreshes happen among the calls.
          if (done === 150 || done === 400) await Promise.all([expire(alice), expire(bob)]);
          const res = await browser.request(`${env.appUrl}/iso/me`, { headers: json });
          expect(res.status).toBe(200);
          const body = JSON.parse(res.body) as { expected: string; saw: string };
          if (body.expected !== body.saw) mismatches++;
          done++;
        }
      }),
    );
    expect(done).toBe(600);
    expect(mismatches).toBe(0);
    expect(env.provider.counters.refreshGrants - refreshesBefore).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it("I41: a request that changes its client's defaults or interceptors changes nothing for other requests or users", async () => {
    const alice = (await env.login(undefined, { user: 'alice' })).browser;
    const bob = (await env.login(undefined, { user: 'bob' })).browser;
    const calls: Array<Promise<{ who: string; body: { expected: string; saw: string; headers: Record<string, string> } }>> = [];
    for (let i = 0; i < 60; i++) {
      calls.push(alice.request(`${env.appUrl}/iso/mutating`, { headers: json }).then((r) => ({ who: 'mutating', body: JSON.parse(r.body) })));
      calls.push(bob.request(`${env.appUrl}/iso/plain`, { headers: json }).then((r) => ({ who: 'plain', body: JSON.parse(r.body) })));
      calls.push(alice.request(`${env.appUrl}/iso/plain`, { headers: json }).then((r) => ({ who: 'plain', body: JSON.parse(r.body) })));
    }
    for (const { who, body } of await Promise.all(calls)) {
      expect(body.saw).toBe(body.expected);
      if (who === 'mutating') {
        expect(body.headers['x-user']).toBe(body.expected);
        expect(body.headers['x-intercepted']).toBe(body.expected);
      } else {
        expect(body.headers['x-user']).toBeUndefined();
        expect(body.headers['x-intercepted']).toBeUndefined();
      }
    }
  }, 60_000);
});
