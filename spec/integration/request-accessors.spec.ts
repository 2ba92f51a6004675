import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import request from 'supertest';
import { createEnv, type TestEnv } from '../helpers/env.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createEnv();
});
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
