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
