import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import type { RequestHandler } from 'express';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ConfigError, oauthProxy, sessionEndpoint } from '../../lib/index.js';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { clearsSession, expectNothingLost, snapshot } from '../helpers/assertions.js';
import { CLIENT_SECRET } from '../helpers/provider.js';

/** What the hostile upstream received. */
interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  complete: boolean;
  /** When the upstream's answer closed (set by the slow-drip route). */
  closedAt?: number;
}

/**
 * An API origin that misbehaves on demand: reflects the request (token included) in headers and bodies,
 * sets cookies and hop-by-hop headers, redirects, hangs, drips, answers huge, compresses, rejects a token.
 */
function startHostile() {
  const received: Received[] = [];
  const state = { rejectToken: undefined as string | undefined, evilUrl: '' };
  const server = http.createServer((req, res) => {
    const rec: Received = { method: req.method!, url: req.url!, headers: req.headers, bytes: 0, complete: false };
    received.push(rec);
    const auth = req.headers.authorization ?? '';
    const token = auth.replace(/^Bearer /, '');
    const u = new URL(req.url!, 'http://x');
    const route = u.pathname.replace(/^\/base/, '');
    req.on('data', (c: Buffer) => (rec.bytes += c.length));
    req.on('end', () => {
      rec.complete = true;
      if (state.rejectToken && token === state.rejectToken) {
        return void res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' }).end('{"error":"invalid_token"}');
      }
      switch (route) {
        case '/echo':
          res.writeHead(200, {
            'content-type': 'application/json',
            'set-cookie': ['up=1; Path=/', 'sid=evil; Path=/; HttpOnly'],
            etag: `"e-${token}"`,
            'cache-control': 'private, max-age=5',
            'x-echo-auth': auth,
            connection: 'x-hop',
            'x-hop': 'hop',
            'keep-alive': 'timeout=99',
            'proxy-authenticate': 'Basic',
          });
          res.end(
            JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bytes: rec.bytes, escaped: token.replaceAll('/', '\\/') }),
          );
          return;
        case '/split': {
          // The token, streamed in pieces split at every few bytes, raw and percent-encoded.
          res.writeHead(200, { 'content-type': 'text/plain' });
          const text = `before ${token} middle ${encodeURIComponent(token)} after`;
          let i = 0;
          const step = () => {
            if (i >= text.length) return void res.end();
            res.write(text.slice(i, i + 7));
            i += 7;
            setImmediate(step);
          };
          return step();
        }
        case '/gzip':
          res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
          return void res.end(zlib.gzipSync(`token=${token}`));
        case '/redirect':
          return void res.writeHead(302, { location: `${state.evilUrl}/stolen` }).end('moved');
        case '/sized': {
          // A small answer with an explicit Content-Length that reflects the token in its three forms.
          const text = `raw=${token} escaped=${token.replaceAll('/', '\\/')} encoded=${encodeURIComponent(token)} end`;
          return void res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(text)) }).end(text);
        }
        case '/short': {
          // Declares 1000 bytes, sends the token and 20 more bytes, then drops the connection.
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
          res.write(`${token}${'y'.repeat(20)}`);
          return void setTimeout(() => res.destroy(), 50);
        }
        case '/hang':
          return;
        case '/drip': {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('x'.repeat(4096));
          const t = setInterval(() => res.write('x'), 50);
          res.on('close', () => {
            clearInterval(t);
            rec.closedAt = Date.now();
          });
          return;
        }
        case '/huge-declared':
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(50 * 1024 * 1024) });
          return void res.end();
        case '/huge-chunked':
        case '/stream': {
          const total = Number(u.searchParams.get('bytes') ?? 10 * 1024 * 1024);
          const chunk = Buffer.alloc(64 * 1024, 0x61);
          const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream' };
          if (route === '/stream') headers['content-length'] = String(total);
          res.writeHead(200, headers);
          let sent = 0;
          const pump = () => {
            while (sent < total) {
              const n = Math.min(chunk.length, total - sent);
              sent += n;
              if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
            }
            res.end();
          };
          res.on('close', () => (sent = total));
          return pump();
        }
        case '/upload':
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes: rec.bytes }));
        case '/not-found':
          return void res.writeHead(404, { 'content-type': 'application/json' }).end(`{"message":"no such thing","auth":"${auth}"}`);
        default:
          res.writeHead(500, { 'content-type': 'text/plain' }).end('upstream broke');
      }
    });
  }) as http.Server & { url: string };
  return { server, received, state };
}

let env: TestEnv;
let hostile: ReturnType<typeof startHostile>;
let hostileUrl: string;
let evil: http.Server;
let evilHits = 0;
let evilUrl: string;

const listen = async (server: http.Server) => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  hostile = startHostile();
  hostileUrl = await listen(hostile.server);
  evil = http.createServer((_req, res) => {
    evilHits++;
    res.end('evil');
  });
  evilUrl = await listen(evil);
  hostile.state.evilUrl = evilUrl;
  let realProxy: RequestHandler = (_req, _res, next) => next();
  env = await createEnv({
    oauth: (_p, api) => ({ apiBaseUrl: [api.url, hostileUrl], httpTimeout: 3000, tokenCacheMs: 0 }),
    routes: (app) => {
      app.all('/oauth/session', sessionEndpoint());
      app.use('/api/h', oauthProxy({ target: `${hostileUrl}/base`, maxRequestBytes: 1024 * 1024, maxResponseBytes: 2 * 1024 * 1024, timeout: 1500 }));
      app.use('/api/big', oauthProxy({ target: `${hostileUrl}/base`, maxResponseBytes: 300 * 1024 * 1024, timeout: 120_000 }));
      // The resource server's URL is known once createEnv returns.
      app.use('/api/real', (req, res, next) => realProxy(req, res, next));
      app.use('/api/off', oauthProxy({ target: evilUrl }));
    },
  });
  realProxy = oauthProxy({ target: `${env.api.url}/v1` });
}, 60_000);
afterAll(async () => {
  hostile?.server.closeAllConnections();
  hostile?.server.close();
  evil?.close();
  await env?.close();
});

const H = { 'x-csrf': '1', accept: 'application/json' };

/** Every token and secret this browser's session ever held (before and after refreshes). */
async function secretsOf(browser: TestBrowser, known: Set<string>): Promise<string[]> {
  const r = await env.readRecord(env.sid(browser));
  if (r) for (const t of [r.access_token, r.refresh_token, r.id_token]) if (t) known.add(t);
  return [...known, CLIENT_SECRET];
}

/** No token in any response this browser saw (status line aside: bodies, headers, cookies), nor in the logs. */
async function expectNoTokenSeen(browser: TestBrowser, known: Set<string>) {
  const secrets = await secretsOf(browser, known);
  const haystack = [...browser.seen.map((s) => `${JSON.stringify(s.headers)}\n${s.setCookies.join('\n')}\n${s.body}`), ...env.logger.lines].join(
    '\n',
  );
  for (const s of secrets) {
    for (const form of [s, encodeURIComponent(s), s.replaceAll('/', '\\/')])
      expect(haystack.includes(form) ? `leaked ${s.slice(0, 6)}…` : 'clean').toBe('clean');
  }
}

async function loggedIn() {
  const { browser } = await env.login();
  const known = new Set<string>();
  await secretsOf(browser, known);
  return { browser, known };
}

/** A raw request with the path exactly as given (no URL normalisation), with the browser's cookie. */
function rawRequest(
  browser: TestBrowser,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(env.appUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: init.method ?? 'GET',
        path,
        headers: { cookie: browser.cookieHeader(env.appUrl), ...H, ...init.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

/** Writes raw bytes on a socket and returns the first response's status line (or what the server said). */
function rawSocket(bytes: string): Promise<string> {
  const url = new URL(env.appUrl);
  return new Promise((resolve) => {
    const sock = net.connect(Number(url.port), url.hostname, () => sock.write(bytes));
    let data = '';
    sock.on('data', (c) => {
      data += c.toString();
      if (data.includes('\r\n\r\n')) sock.destroy();
    });
    sock.on('close', () => resolve(data));
    sock.on('error', () => resolve(data));
    setTimeout(() => sock.destroy(), 3000);
  });
}

describe('K: API proxy (rule 16)', () => {
  it('K1: a GET is forwarded under the base path with the token and the query, and streams back', async () => {
    const { browser, known } = await loggedIn();
    const token = (await env.readRecord(env.sid(browser)))!.access_token;
    const n = hostile.received.length;
    const res = await browser.request(`${env.appUrl}/api/h/echo?q=1&x=%20y`, { headers: H });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.url).toBe('/base/echo?q=1&x=%20y');
    expect(hostile.received.length).toBe(n + 1);
    expect(hostile.received[n]!.headers.authorization).toBe(`Bearer ${token}`);
    expect(res.headers.get('cache-control')).toBe('private, max-age=5');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    await expectNoTokenSeen(browser, known);
  });

  it('K2: a reflecting upstream: the token is masked in header values and bodies (split across chunks, escaped, encoded, gzip)', async () => {
    const { browser, known } = await loggedIn();
    const echo = await browser.request(`${env.appUrl}/api/h/echo`, { headers: H });
    expect(echo.status).toBe(200);
    const body = JSON.parse(echo.body);
    expect(body.headers.authorization).toMatch(/^Bearer \*+$/);
    expect(echo.headers.get('etag')).toBe('"e-[REDACTED]"');
    expect(echo.headers.get('x-echo-auth')).toBeNull();
    const split = await browser.request(`${env.appUrl}/api/h/split`, { headers: H });
    expect(split.body).toMatch(/^before \*+ middle \*+ after$/);
    const gz = await browser.request(`${env.appUrl}/api/h/gzip`, { headers: H });
    expect(gz.status).toBe(200);
    expect(gz.body).toMatch(/^token=\*+$/);
    expect(gz.headers.get('content-encoding')).toBeNull();
    const nf = await browser.request(`${env.appUrl}/api/h/not-found`, { headers: H });
    expect(nf.status).toBe(404);
    expect(JSON.parse(nf.body).message).toBe('no such thing');
    await expectNoTokenSeen(browser, known);
  });

  it("K3: the browser's Cookie, Authorization and hop-by-hop headers never go upstream; the upstream's Set-Cookie, hop-by-hop and Location never come back", async () => {
    const { browser, known } = await loggedIn();
    const n = hostile.received.length;
    const res = await rawRequest(browser, '/api/h/echo', {
      headers: {
        authorization: 'Bearer from-the-browser',
        connection: 'keep-alive, x-secret',
        'x-secret': 'hop',
        'keep-alive': 'timeout=1',
        'proxy-authorization': 'Basic abc',
        te: 'trailers',
        'x-forwarded-host': 'evil.example',
        range: 'bytes=0-10',
        'if-none-match': '"v1"',
        'accept-language': 'fr',
        'accept-encoding': 'gzip',
      },
    });
    expect(res.status).toBe(200);
    const up = hostile.received[n]!.headers;
    expect(up.cookie).toBeUndefined();
    expect(up.authorization).toMatch(/^Bearer (?!from-the-browser)/);
    for (const h of ['x-secret', 'keep-alive', 'proxy-authorization', 'te', 'x-forwarded-host', 'x-csrf']) expect(up[h]).toBeUndefined();
    expect(up['accept-encoding']).toBe('identity');
    expect(up.range).toBe('bytes=0-10');
    expect(up['if-none-match']).toBe('"v1"');
    expect(up['accept-language']).toBe('fr');
    expect(res.headers['set-cookie']).toBeUndefined();
    for (const h of ['x-hop', 'proxy-authenticate', 'x-echo-auth']) expect(res.headers[h]).toBeUndefined();
    expect(res.headers['keep-alive']).not.toBe('timeout=99');
    const redirect = await browser.request(`${env.appUrl}/api/h/redirect`, { headers: H });
    expect(redirect.status).toBe(302);
    expect(redirect.location).toBeUndefined();
    expect(evilHits).toBe(0);
    // The session cookie set by the app is the only cookie the browser has.
    expect([...browser.cookies(env.appUrl).keys()]).toEqual(['connect.sid']);
    browser.seen.push({ url: 'raw', status: res.status, headers: res.headers as Record<string, string>, setCookies: [], body: res.body });
    await expectNoTokenSeen(browser, known);
  });

  it('K4: without the anti-CSRF header, with cross-site fetch metadata or a foreign Origin: 403, upstream never contacted, nothing lost', async () => {
    const { browser, known } = await loggedIn();
    const before = await snapshot(env, browser);
    const n = hostile.received.length;
    const cases: Array<Record<string, string>> = [
      { accept: 'application/json' },
      { 'x-csrf': '0' },
      { 'x-csrf': '1', 'sec-fetch-site': 'cross-site' },
      { 'x-csrf': '1', 'sec-fetch-site': 'same-site' },
      { 'x-csrf': '1', 'sec-fetch-site': 'none' },
      { 'x-csrf': '1', origin: 'http://evil.example' },
      { 'x-csrf': '1', origin: 'null' },
    ];
    for (const headers of cases) {
      for (const method of ['GET', 'POST']) {
        const res = await browser.request(`${env.appUrl}/api/h/echo`, { method, headers, body: method === 'POST' ? '{}' : undefined });
        expect([headers, res.status, res.body]).toEqual([headers, 403, '{"error":"cross_site_request"}']);
        await expectNothingLost(env, browser, before, res);
      }
    }
    expect(hostile.received.length).toBe(n);
    const ok = await browser.request(`${env.appUrl}/api/h/echo`, { headers: { ...H, 'sec-fetch-site': 'same-origin', origin: env.appUrl } });
    expect(ok.status).toBe(200);
    await expectNoTokenSeen(browser, known);
  });

  it('K5: without a login: 401 {"error":"login_required"}, never a redirect (even for a page request), upstream never contacted', async () => {
    const browser = new TestBrowser();
    const n = hostile.received.length;
    for (const accept of ['application/json', 'text/html']) {
      const res = await browser.request(`${env.appUrl}/api/h/echo`, { headers: { 'x-csrf': '1', accept } });
      expect(res.status).toBe(401);
      expect(res.body).toBe('{"error":"login_required"}');
      expect(res.location).toBeUndefined();
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
    // A session whose token record is gone: the same 401.
    const { browser: b2 } = await env.login();
    await env.tokenStore.delete(env.sid(b2));
    const gone = await b2.request(`${env.appUrl}/api/h/echo`, { headers: H });
    expect([gone.status, gone.body]).toEqual([401, '{"error":"login_required"}']);
    expect(hostile.received.length).toBe(n);
  });

  it('K6: path escapes in every encoding are refused with 400 invalid_path before any upstream contact', async () => {
    const { browser, known } = await loggedIn();
    const before = await snapshot(env, browser);
    const n = hostile.received.length;
    const payloads = [
      '/..',
      '/../echo',
      '/a/../../echo',
      '/./echo',
      '/%2e%2e/echo',
      '/%2E%2E/echo',
      '/.%2e/echo',
      '/%2e./echo',
      '/%2e',
      '/%252e%252e/echo',
      '/%25252e%25252e/echo',
      '/a%2f..%2fecho',
      '/a%2Fb',
      '/..%2f',
      '/a%5c..%5cecho',
      '/a\\..\\echo',
      '/\\evil.example',
      '//evil.example/x',
      '/a//b',
      '/%00',
      '/a%00b',
      '/a%0d%0aX-Injected:%201',
      '/%c0%ae%c0%ae/echo',
      '/%ZZ',
      '/%',
      '/a%09b',
    ];
    for (const p of payloads) {
      const res = await rawRequest(browser, `/api/h${p}`);
      expect([p, res.status, res.body]).toEqual([p, 400, '{"error":"invalid_path"}']);
    }
    expect(hostile.received.length).toBe(n);
    // Ordinary encoded characters are fine and passed as sent.
    const ok = await rawRequest(browser, '/api/h/echo/caf%C3%A9%20x?path=../../etc&x=%2e%2e');
    expect(ok.status).toBe(500); // the hostile upstream's own answer for an unknown route
    expect(hostile.received.at(-1)!.url).toBe('/base/echo/caf%C3%A9%20x?path=../../etc&x=%2e%2e');
    await expectNothingLost(env, browser, before, await browser.request(`${env.appUrl}/public`));
    await expectNoTokenSeen(browser, known);
  });

  it('K7: request smuggling: conflicting Content-Length / Transfer-Encoding and odd framings are refused, nothing reaches the upstream', async () => {
    const { browser } = await loggedIn();
    const cookie = browser.cookieHeader(env.appUrl);
    const host = new URL(env.appUrl).host;
    const n = hostile.received.length;
    const base = `POST /api/h/upload HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookie}\r\nX-CSRF: 1\r\nAccept: application/json\r\n`;
    const attempts = [
      `${base}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/h/echo HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      `${base}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
      `${base}Transfer-Encoding: identity\r\n\r\n`,
      `${base}Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`,
      `${base}Content-Length: +4\r\n\r\nabcd`,
      `${base}Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n`,
    ];
    for (const a of attempts) {
      const answer = await rawSocket(a);
      expect([a.slice(base.length, base.length + 40), answer.slice(0, 12)]).toEqual([a.slice(base.length, base.length + 40), 'HTTP/1.1 400']);
    }
    expect(hostile.received.length).toBe(n);
  });

  it('K8: uploads stream with a cap: Content-Length over it gets 413 without upstream contact; a chunked body over it is cut at the cap', async () => {
    const { browser, known } = await loggedIn();
    const n = hostile.received.length;
    const ok = await rawRequest(browser, '/api/h/upload', {
      method: 'POST',
      body: Buffer.alloc(512 * 1024, 1),
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect([ok.status, JSON.parse(ok.body).bytes]).toEqual([200, 512 * 1024]);
    expect(hostile.received[n]!.headers['content-length']).toBe(String(512 * 1024));
    const declared = await rawRequest(browser, '/api/h/upload', { method: 'POST', body: Buffer.alloc(2 * 1024 * 1024, 1) });
    expect([declared.status, declared.body]).toEqual([413, '{"error":"request_too_large"}']);
    expect(hostile.received.length).toBe(n + 1);
    // Chunked (no Content-Length): streamed until the cap, then the upstream request is aborted.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const url = new URL(env.appUrl);
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: 'PUT',
          path: '/api/h/upload',
          headers: { cookie: browser.cookieHeader(env.appUrl), ...H },
          agent: false,
        },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
      const chunk = Buffer.alloc(64 * 1024, 2);
      let sent = 0;
      const pump = () => {
        while (sent < 3 * 1024 * 1024 && !req.destroyed) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect([chunked.status, chunked.body]).toEqual([413, '{"error":"request_too_large"}']);
    const up = hostile.received.at(-1)!;
    expect(up.method).toBe('PUT');
    expect(up.complete).toBe(false);
    expect(up.bytes).toBeLessThanOrEqual(1024 * 1024);
    await expectNoTokenSeen(browser, known);
  });

  it('K9: a hanging upstream gets 504 within the deadline; a slow-drip body is cut at the deadline', async () => {
    const { browser, known } = await loggedIn();
    const t0 = Date.now();
    const hang = await browser.request(`${env.appUrl}/api/h/hang`, { headers: H });
    expect([hang.status, hang.body]).toEqual([504, '{"error":"upstream_timeout"}']);
    expect(Date.now() - t0).toBeLessThan(3000);
    const t1 = Date.now();
    await expect(browser.request(`${env.appUrl}/api/h/drip`, { headers: H })).rejects.toThrow();
    expect(Date.now() - t1).toBeLessThan(3000);
    await expectNoTokenSeen(browser, known);
  });

  it('K20: a browser that goes away mid-answer ends the upstream exchange at once, not at the deadline', async () => {
    const { browser, known } = await loggedIn();
    const url = new URL(env.appUrl);
    const before = hostile.received.length;
    // /api/big has a 120 s deadline: only the browser leaving can end this exchange within the test.
    const leftAt = await new Promise<number>((resolve, reject) => {
      const req = http.get(
        { host: url.hostname, port: url.port, path: '/api/big/drip', headers: { cookie: browser.cookieHeader(env.appUrl), ...H }, agent: false },
        (res) => {
          expect(res.statusCode).toBe(200);
          res.once('data', () => {
            req.destroy();
            resolve(Date.now());
          });
        },
      );
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    });
    const upstream = hostile.received.slice(before).find((r) => r.url === '/base/drip');
    expect(upstream).toBeDefined();
    for (let i = 0; i < 40 && upstream!.closedAt === undefined; i++) await new Promise((r) => setTimeout(r, 50));
    expect(upstream!.closedAt).toBeDefined();
    expect(upstream!.closedAt! - leftAt).toBeLessThan(2000);
    await expectNoTokenSeen(browser, known);
  });

  it('K21: a small answer with a Content-Length is relayed whole, token masked in every form, same length; one cut short fails without the token', async () => {
    const { browser, known } = await loggedIn();
    const token = (await env.readRecord(env.sid(browser)))!.access_token;
    const res = await browser.request(`${env.appUrl}/api/h/sized`, { headers: H });
    expect(res.status).toBe(200);
    const expected = `raw=${token} escaped=${token.replaceAll('/', '\\/')} encoded=${encodeURIComponent(token)} end`;
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(expected)));
    expect(res.body).toHaveLength(expected.length);
    expect(res.body).toMatch(/^raw=\*+ escaped=\*+ encoded=\*+ end$/);
    // Cut short by the upstream: the browser's answer fails (its declared length is never reached), no hang.
    const started = Date.now();
    const short = await browser.request(`${env.appUrl}/api/h/short`, { headers: H }).then(
      (r) => r,
      (err: unknown) => err,
    );
    expect(Date.now() - started).toBeLessThan(1400);
    if (!(short instanceof Error)) expect((short as { status: number }).status).toBeGreaterThanOrEqual(500);
    await expectNoTokenSeen(browser, known);
  });

  it('K10: a huge answer: over the cap by Content-Length is a 502 before any byte; a chunked one is cut at the cap', async () => {
    const { browser, known } = await loggedIn();
    const declared = await browser.request(`${env.appUrl}/api/h/huge-declared`, { headers: H });
    expect([declared.status, declared.body]).toEqual([502, '{"error":"upstream_error"}']);
    await expect(browser.request(`${env.appUrl}/api/h/huge-chunked?bytes=${10 * 1024 * 1024}`, { headers: H })).rejects.toThrow();
    await expectNoTokenSeen(browser, known);
  });

  it('K11: after an upstream 401, a GET is refreshed once and replayed; a POST with a streamed body is not replayed (401 passed on, token refreshed)', async () => {
    const { browser, known } = await loggedIn();
    const sid = env.sid(browser);
    const first = (await env.readRecord(sid))!.access_token;
    hostile.state.rejectToken = first;
    const refreshes = env.provider.counters.refreshGrants;
    const n = hostile.received.length;
    const get = await browser.request(`${env.appUrl}/api/h/echo`, { headers: H });
    expect(get.status).toBe(200);
    expect(env.provider.counters.refreshGrants).toBe(refreshes + 1);
    expect(hostile.received.length).toBe(n + 2);
    const second = (await env.readRecord(sid))!.access_token;
    expect(second).not.toBe(first);
    known.add(first);
    hostile.state.rejectToken = second;
    const post = await browser.request(`${env.appUrl}/api/h/upload`, {
      method: 'POST',
      headers: { ...H, 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect([post.status, post.body]).toEqual([401, '{"error":"invalid_token"}']);
    expect(hostile.received.length).toBe(n + 3);
    expect(env.provider.counters.refreshGrants).toBe(refreshes + 2);
    known.add(second);
    hostile.state.rejectToken = undefined;
    const again = await browser.request(`${env.appUrl}/api/h/upload`, { method: 'POST', headers: H, body: '{"a":1}' });
    expect(again.status).toBe(200);
    await expectNoTokenSeen(browser, known);
  });

  it('K12: a storm of proxied calls with an expired token makes exactly one refresh, and all succeed', async () => {
    const { browser, known } = await loggedIn();
    const sid = env.sid(browser);
    const record = (await env.readRecord(sid))!;
    await env.writeRecord(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5 });
    const refreshes = env.provider.counters.refreshGrants;
    const results = await Promise.all(Array.from({ length: 20 }, () => browser.request(`${env.appUrl}/api/real/me`, { headers: H })));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(env.provider.counters.refreshGrants).toBe(refreshes + 1);
    await expectNoTokenSeen(browser, known);
  });

  it('K13: methods outside the allowlist get 405 with Allow; a target outside apiBaseUrl is never contacted', async () => {
    const { browser } = await loggedIn();
    const n = hostile.received.length;
    for (const method of ['OPTIONS', 'TRACE', 'PROPFIND']) {
      const res = await rawRequest(browser, '/api/h/echo', { method });
      expect([method, res.status, res.headers.allow]).toEqual([method, 405, 'GET, HEAD, POST, PUT, PATCH, DELETE']);
    }
    expect(hostile.received.length).toBe(n);
    const off = await browser.request(`${env.appUrl}/api/off/x`, { headers: H });
    expect([off.status, off.body]).toEqual([500, '{"error":"origin_not_allowed"}']);
    expect(evilHits).toBe(0);
  });

  it('K14: the real resource server through the proxy (token validated upstream), HEAD included', async () => {
    const { browser, known } = await loggedIn();
    const me = await browser.request(`${env.appUrl}/api/real/me`, { headers: H });
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body).sub).toBe('alice');
    const head = await rawRequest(browser, '/api/real/me', { method: 'HEAD' });
    expect(head.status).toBe(200);
    await expectNoTokenSeen(browser, known);
  });

  it('K15: 200 MB streamed through the proxy keeps memory flat', async () => {
    const { browser } = await loggedIn();
    const total = 200 * 1024 * 1024;
    const url = new URL(env.appUrl);
    const base = process.memoryUsage();
    let peakExternal = 0;
    let peakRss = 0;
    const sample = setInterval(() => {
      const m = process.memoryUsage();
      peakExternal = Math.max(peakExternal, m.arrayBuffers);
      peakRss = Math.max(peakRss, m.rss);
    }, 20);
    const received = await new Promise<number>((resolve, reject) => {
      http
        .get(
          {
            host: url.hostname,
            port: url.port,
            path: `/api/big/stream?bytes=${total}`,
            headers: { cookie: browser.cookieHeader(env.appUrl), ...H },
            agent: false,
          },
          (res) => {
            let n = 0;
            res.on('data', (c: Buffer) => (n += c.length));
            res.on('end', () => resolve(n));
            res.on('error', reject);
          },
        )
        .on('error', reject);
    });
    clearInterval(sample);
    expect(received).toBe(total);
    // Buffers in flight are bounded by the stream high-water marks; whole-body buffering would be 200 MB.
    expect(peakExternal - base.arrayBuffers).toBeLessThan(64 * 1024 * 1024);
    expect(peakRss - base.rss).toBeLessThan(120 * 1024 * 1024);
  }, 120_000);
});

describe('K: session endpoint for single-page apps', () => {
  it('K16: anonymous: isAuthenticated false, no-store; logged in: user, expiry and logout URL, never a token', async () => {
    const anon = new TestBrowser();
    const a = await anon.request(`${env.appUrl}/oauth/session`, { headers: H });
    expect(a.status).toBe(200);
    expect(a.headers.get('cache-control')).toBe('no-store');
    expect(JSON.parse(a.body)).toEqual({ isAuthenticated: false, user: null, expiresAt: null, connections: [], logoutUrl: '/oauth/logout' });
    const { browser, known } = await loggedIn();
    const res = await browser.request(`${env.appUrl}/oauth/session`, { headers: H });
    const body = JSON.parse(res.body);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(body.isAuthenticated).toBe(true);
    expect(body.user.sub).toBe('alice');
    expect(new Date(body.expiresAt).getTime()).toBeGreaterThan(Date.now());
    expect(body.logoutUrl).toBe('/oauth/logout');
    expect(body.connections).toEqual([]);
    await expectNoTokenSeen(browser, known);
  });

  it('K17: the session endpoint needs the anti-CSRF header and same-origin metadata, and is GET only', async () => {
    const { browser } = await loggedIn();
    const cases: Array<Record<string, string>> = [
      {},
      { 'x-csrf': '1', 'sec-fetch-site': 'cross-site' },
      { 'x-csrf': '1', origin: 'http://evil.example' },
    ];
    for (const headers of cases) {
      const res = await browser.request(`${env.appUrl}/oauth/session`, { headers });
      expect([res.status, res.body]).toEqual([403, '{"error":"cross_site_request"}']);
    }
    const post = await browser.request(`${env.appUrl}/oauth/session`, { method: 'POST', headers: H });
    expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
  });

  it('K18: SPA logout: a fetch POST with the header gets 204; the session endpoint then says logged out', async () => {
    const { browser } = await loggedIn();
    const out = await browser.request(`${env.appUrl}/oauth/logout`, {
      method: 'POST',
      headers: { ...H, 'sec-fetch-site': 'same-origin', 'sec-fetch-dest': 'empty', origin: env.appUrl },
    });
    expect(out.status).toBe(204);
    expect(out.setCookies.some(clearsSession)).toBe(true);
    const res = await browser.request(`${env.appUrl}/oauth/session`, { headers: H });
    expect(JSON.parse(res.body).isAuthenticated).toBe(false);
    const api = await browser.request(`${env.appUrl}/api/h/echo`, { headers: H });
    expect(api.status).toBe(401);
  });
});

describe('K: options are checked at startup', () => {
  it('K19: bad targets, forbidden headers in an allowlist and unknown options throw a ConfigError naming the option', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ target: 'not a url' }, /target/],
      [{ target: 'ftp://x.example' }, /http/],
      [{ target: 'https://u:p@x.example' }, /credentials/],
      [{ target: 'https://x.example', responseHeaders: ['set-cookie'] }, /responseHeaders.*set-cookie/],
      [{ target: 'https://x.example', requestHeaders: ['Cookie'] }, /requestHeaders.*cookie/],
      [{ target: 'https://x.example', requestHeaders: ['connection'] }, /hop-by-hop/],
      [{ target: 'https://x.example', headers: { authorization: 'x' } }, /authorization/],
      [{ target: 'https://x.example', methods: ['CONNECT'] }, /CONNECT/],
      [{ target: 'https://x.example', maxResponseBytes: -1 }, /maxResponseBytes/],
      [{ target: 'https://x.example', tagret: 1 }, /unknown option "tagret"/],
    ];
    for (const [opts, message] of bad) {
      expect(() => oauthProxy(opts as never)).toThrow(ConfigError);
      expect(() => oauthProxy(opts as never)).toThrow(message);
    }
  });
});
