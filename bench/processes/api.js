/**
 * The upstream API the variants call with the user's access token: plain node:http, one route
 * `GET /v1/me`. The bearer token is checked for real (signature against the provider's JWKS, issuer,
 * audience, `typ: at+jwt`, expiry) with jose; the JWKS is fetched once at startup and kept in memory,
 * so the check costs a signature verification and no network call. Anything else gets 401.
 */
import http from 'node:http';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { childConfig, serve } from '../lib/ipc.js';

const cfg = childConfig();

async function getJson(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000), redirect: 'error' });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return res.json();
}

const metadata = await getJson(`${cfg.issuer}/.well-known/openid-configuration`);
const jwks = createLocalJWKSet(await getJson(metadata.jwks_uri));
const verifyOptions = { issuer: metadata.issuer, audience: cfg.apiResource, typ: 'at+jwt', algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'] };

let hits = 0;
let rejected = 0;
let connections = 0;

function deny(res) {
  rejected++;
  res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' });
  res.end('{"error":"invalid_token"}');
}

/** P6: `GET /v1/stream?bytes=N` streams N bytes (one reused 64 KiB chunk, with backpressure). */
function stream(req, res) {
  const total = Math.min(Number(new URL(req.url, 'http://x').searchParams.get('bytes')) || 0, 1 << 30);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
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
  pump();
}

const server = http.createServer(async (req, res) => {
  const streaming = req.method === 'GET' && req.url.startsWith('/v1/stream?');
  if (!streaming && (req.method !== 'GET' || req.url !== '/v1/me')) {
    res.writeHead(404, { 'content-type': 'application/json' });
    return void res.end('{"error":"not_found"}');
  }
  const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.headers.authorization ?? '');
  if (!m) return deny(res);
  let payload;
  try {
    ({ payload } = await jwtVerify(m[1], jwks, verifyOptions));
  } catch {
    return deny(res);
  }
  hits++;
  if (streaming) return stream(req, res);
  const body = JSON.stringify({ sub: payload.sub, scope: payload.scope, ok: true });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.on('connection', () => connections++);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

const ipc = serve(
  {
    counters: () => ({ hits, rejected, connections }),
  },
  {
    onExit: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  },
);
ipc.ready({ url: `http://127.0.0.1:${server.address().port}`, pid: process.pid });
