import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import request from 'supertest';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { stateOf } from '../../lib/request-state.js';

let env: TestEnv;
/** What the retention route below found: whether the request or its session is reachable from the package's state. */
let retention: { contextKept: boolean; stateFound: boolean; onRequest: number; reachesRequest: string[] } | undefined;
beforeAll(async () => {
  env = await createEnv({
    routes: (app) => {
      app.get('/retention', async (req, res) => {
        // Use everything a request can build: req.oauth, its token info, req.oauthClient and a call with it.
        const authenticated = req.oauth.isAuthenticated;
        await req.oauth.tokenInfo();
        await req.oauthClient.get('/v1/me');
        const state = stateOf(req);
        retention = {
          // req.oauth holds the request in private fields (out of reach of the walk below), so it is made on
          // each read and never kept on the state.
          contextKept: req.oauth === req.oauth,
          stateFound: state !== undefined,
          onRequest: Object.getOwnPropertySymbols(req).filter((s) => String(s).includes('express-oauth-client')).length,
          reachesRequest: pathsTo(state, [req, req.session]),
        };
        res.json({ authenticated });
      });
    },
  });
});

/**
 * Paths from `root` to any of `targets`, following own properties (string and symbol keys) of plain
 * objects and class instances, never into the long-lived parts (the instance, its group, functions).
 */
function pathsTo(root: unknown, targets: unknown[]): string[] {
  const found: string[] = [];
  const seen = new Set<unknown>();
  const walk = (value: unknown, path: string, depth: number): void => {
    if (value === null || typeof value !== 'object' || seen.has(value) || depth > 8) return;
    if (targets.includes(value)) return void found.push(path);
    seen.add(value);
    for (const key of Reflect.ownKeys(value)) {
      if (key === 'instance' || key === 'group') continue;
      const child = Object.getOwnPropertyDescriptor(value, key)?.value as unknown;
      walk(child, `${path}.${String(key)}`, depth + 1);
    }
  };
  walk(root, 'state', 0);
  return found;
}
afterAll(async () => {
  await env?.close();
});

describe('request accessors live on the app, not on every request of the process', () => {
  it('req.oauth and req.oauthClient are defined on the app request prototype only', async () => {
    // The env's app has served a request through oauth(): its prototype has the accessors.
    await request(env.app).get('/public').expect(200);
    expect(Object.getOwnPropertyDescriptor(env.app.request, 'oauth')?.get).toBeInstanceOf(Function);
    expect(Object.getOwnPropertyDescriptor(env.app.request, 'oauthClient')?.get).toBeInstanceOf(Function);
    expect('oauth' in http.IncomingMessage.prototype).toBe(false);
    expect('oauthClient' in http.IncomingMessage.prototype).toBe(false);
  });

  it('another app in the same process without oauth() sees no req.oauth', async () => {
    const other = express();
    other.get('/', (req, res) => res.json({ has: 'oauth' in req, hasClient: 'oauthClient' in req }));
    const res = await request(other).get('/').expect(200);
    expect(res.body).toEqual({ has: false, hasClient: false });
  });

  it('a sub-app mounted under the app inherits the accessors', async () => {
    const sub = express();
    sub.get('/who', (req, res) => res.json({ authenticated: req.oauth.isAuthenticated }));
    env.app.use('/sub', sub);
    const res = await request(env.app).get('/sub/who').expect(200);
    expect(res.body).toEqual({ authenticated: false });
  });
});

describe('per-request state does not point back at the request', () => {
  // An object that lives as long as the request and references the request (or its session, which
  // references the request) made every request survive a young-generation GC: +15 µs per request on P1
  // (docs/performance.md, "What the garbage collector saw"). This pins the fix.
  it('after req.oauth, tokenInfo(), req.oauthClient and an API call, the state reaches neither req nor req.session', async () => {
    const { browser } = await env.login();
    const res = await browser.request(`${env.appUrl}/retention`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ authenticated: true });
    expect(retention?.stateFound).toBe(true);
    expect(retention?.contextKept).toBe(false);
    // Nothing on the request object either (the state is in a module-private map).
    expect(retention?.onRequest).toBe(0);
    expect(retention?.reachesRequest).toEqual([]);
  });
});

describe('several oauth() instances in one app', () => {
  it('each keeps its own routes and login links; the accessors follow the instance the request passed last', async () => {
    const { MemoryTokenStore, oauth, requireAuth } = await import('../../lib/index.js');
    const session = (await import('express-session')).default;
    const make = (name: string) =>
      oauth({
        issuer: `http://localhost:9/${name}`,
        authorizationEndpoint: `http://localhost:9/${name}/authorize`,
        tokenEndpoint: `http://localhost:9/${name}/token`,
        clientId: `client-${name}`,
        clientSecret: 'secret',
        redirectUri: `http://localhost:3000/${name}/oauth/callback`,
        scope: 'read',
        apiBaseUrl: 'http://localhost:4000',
        tokenStore: new MemoryTokenStore(),
        encryptionKey: env.options.encryptionKey,
      });
    const a = make('a');
    const b = make('b');
    const app = express();
    app.use(session({ secret: 'test-secret-test-secret', resave: false, saveUninitialized: false }));
    app.use('/a', a);
    app.use('/b', b);
    app.get('/b/private', requireAuth(), (_req, res) => res.end());
    try {
      const loginA = await request(app).get('/a/oauth/login').expect(302);
      const loginB = await request(app).get('/b/oauth/login').expect(302);
      expect(new URL(loginA.headers.location!).searchParams.get('client_id')).toBe('client-a');
      expect(new URL(loginB.headers.location!).searchParams.get('client_id')).toBe('client-b');
      // The login link of requireAuth() is the last instance's, under its mount point.
      const guarded = await request(app).get('/b/private').expect(302);
      expect(guarded.headers.location).toBe('/b/oauth/login?returnTo=%2Fb%2Fprivate');
    } finally {
      a.close();
      b.close();
    }
  });
});
