/**
 * The upstream API the variants call with the user's access token: plain node:http, one route
 * `GET /v1/me`. The bearer token is checked for real (signature against the provider's JWKS, issuer,
 * audience, `typ: at+jwt`, expiry) with jose; the JWKS is fetched once at startup and kept in memory,
 * so the check costs a signature verification and no network call. Anything else gets 401.
 *
 * DPoP (RFC 9449 §7, for the pkg-dpop variant): `Authorization: DPoP <token>` with a `DPoP` proof is accepted
 * when the proof is a `dpop+jwt` signed by its embedded public key, for this method and URL (`htm`, `htu`),
 * recent (`iat` within 60 s), with a `jti` not seen in the last two minutes and the token's `ath`, and the token's
 * `cnf.jkt` is that key's thumbprint. A DPoP-bound token presented as a bearer token is refused.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { EmbeddedJWK, calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
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

const DPOP_ALGS = ['ES256', 'PS256', 'RS256', 'EdDSA'];
// Proof jtis seen recently: two generations, swapped every minute (a proof is accepted for 60 s at most).
let jtis = new Set();
let oldJtis = new Set();
setInterval(() => {
  oldJtis = jtis;
  jtis = new Set();
}, 60_000).unref();

/** Checks the DPoP proof of a request carrying `token` (RFC 9449 §4.3); answers the proof key's thumbprint, or throws. */
async function checkProof(req, token) {
  const proof = req.headers.dpop;
  if (typeof proof !== 'string') throw new Error('no proof');
  const header = decodeProtectedHeader(proof);
  if (header.typ !== 'dpop+jwt' || !header.jwk || 'd' in header.jwk) throw new Error('proof header');
  const { payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGS });
  const htu = `${origin}${req.url.split('?')[0]}`;
  if (payload.htm !== req.method || payload.htu !== htu) throw new Error('htm/htu');
  if (typeof payload.iat !== 'number' || Math.abs(payload.iat - Date.now() / 1000) > 60) throw new Error('iat');
  if (typeof payload.jti !== 'string' || jtis.has(payload.jti) || oldJtis.has(payload.jti)) throw new Error('jti');
  if (payload.ath !== createHash('sha256').update(token).digest('base64url')) throw new Error('ath');
  jtis.add(payload.jti);
  return calculateJwkThumbprint(header.jwk);
}

let hits = 0;
let dpopHits = 0;
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

/** When each accepted call arrived (epoch ms), while bench/storm-timeline.js records them (`arrivals`). */
let arrivals;

const server = http.createServer(async (req, res) => {
  const arrivedAt = arrivals ? performance.timeOrigin + performance.now() : 0;
  const streaming = req.method === 'GET' && req.url.startsWith('/v1/stream?');
  if (!streaming && (req.method !== 'GET' || req.url !== '/v1/me')) {
    res.writeHead(404, { 'content-type': 'application/json' });
    return void res.end('{"error":"not_found"}');
  }
  const m = /^(Bearer|DPoP) ([A-Za-z0-9._~+/-]+=*)$/.exec(req.headers.authorization ?? '');
  if (!m) return deny(res);
  let payload;
  try {
    ({ payload } = await jwtVerify(m[2], jwks, verifyOptions));
    if (m[1] === 'DPoP') {
      if (typeof payload.cnf?.jkt !== 'string' || payload.cnf.jkt !== (await checkProof(req, m[2]))) throw new Error('cnf.jkt');
      dpopHits++;
    } else if (payload.cnf !== undefined) throw new Error('a DPoP-bound token sent as a bearer token');
  } catch {
    return deny(res);
  }
  hits++;
  if (arrivals) arrivals.push(arrivedAt);
  if (streaming) return stream(req, res);
  const body = JSON.stringify({ sub: payload.sub, scope: payload.scope, ok: true });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.on('connection', () => connections++);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const ipc = serve(
  {
    counters: () => ({ hits, dpopHits, rejected, connections }),
    /** Returns the arrival times recorded since the last call and starts recording anew (`stop`: stops). */
    arrivals: ({ stop = false } = {}) => {
      const taken = arrivals ?? [];
      arrivals = stop ? undefined : [];
      return taken;
    },
  },
  {
    onExit: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  },
);
ipc.ready({ url: origin, pid: process.pid });
