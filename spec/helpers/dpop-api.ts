import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import type { TestProvider } from './provider.js';

/** What the DPoP resource server saw of one request, and what it decided. */
export interface DPoPSeen {
  method: string;
  path: string;
  authorization: string | undefined;
  dpop: string | undefined;
  /** `ok`, or why it refused. */
  outcome: string;
}

/** A resource server that accepts only DPoP-bound tokens with a valid proof (RFC 9449 §7). */
export interface DPoPApi {
  url: string;
  seen: DPoPSeen[];
  /** Demand a server nonce (RFC 9449 §9); rotate it with {@link rotateNonce}. */
  requireNonce: boolean;
  nonce: string;
  rotateNonce(): void;
  close(): Promise<void>;
}

const b64sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

/**
 * Starts the API on 127.0.0.1:0. Each request must carry `Authorization: DPoP <token>` and a `DPoP` proof:
 * `typ` dpop+jwt, an asymmetric `alg`, a signature by the embedded `jwk`, `htm` and `htu` of this request,
 * `iat` within 60 s, a `jti` never seen before, `ath` of the token, the current nonce when one is required,
 * and a token the provider knows whose `cnf.jkt` is the proof key's thumbprint.
 */
export async function startDPoPApi(provider: () => TestProvider): Promise<DPoPApi> {
  const jtis = new Set<string>();
  const state: DPoPApi = {
    url: '',
    seen: [],
    requireNonce: false,
    nonce: randomBytes(12).toString('base64url'),
    rotateNonce() {
      state.nonce = randomBytes(12).toString('base64url');
    },
    close: async () => {},
  };
  const app = express();
  const refuse = (res: express.Response, seen: DPoPSeen, reason: string, error = 'invalid_token') => {
    seen.outcome = reason;
    res.status(401).set('WWW-Authenticate', `DPoP error="${error}", algs="ES256"`);
    if (error === 'use_dpop_nonce') res.set('DPoP-Nonce', state.nonce);
    res.json({ error, reason });
  };
  app.use(async (req, res, next) => {
    const seen: DPoPSeen = {
      method: req.method,
      path: req.path,
      authorization: req.headers.authorization,
      dpop: req.headers.dpop as string | undefined,
      outcome: 'pending',
    };
    state.seen.push(seen);
    const m = /^DPoP ([\x21-\x7e]+)$/.exec(req.headers.authorization ?? '');
    if (!m) return refuse(res, seen, 'not the DPoP scheme');
    const proof = req.headers.dpop;
    if (typeof proof !== 'string') return refuse(res, seen, 'no proof', 'invalid_dpop_proof');
    let payload: Record<string, unknown>;
    let jwk: JWK;
    try {
      const header = decodeProtectedHeader(proof);
      if (header.typ !== 'dpop+jwt' || !header.jwk || 'd' in header.jwk) throw new Error('header');
      jwk = header.jwk;
      ({ payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256', 'RS256', 'PS256', 'EdDSA'] }));
    } catch {
      return refuse(res, seen, 'bad proof signature', 'invalid_dpop_proof');
    }
    const htu = `${state.url}${req.path}`;
    if (payload.htm !== req.method) return refuse(res, seen, 'htm mismatch', 'invalid_dpop_proof');
    if (payload.htu !== htu) return refuse(res, seen, 'htu mismatch', 'invalid_dpop_proof');
    if (typeof payload.iat !== 'number' || Math.abs(payload.iat - Date.now() / 1000) > 60) return refuse(res, seen, 'iat', 'invalid_dpop_proof');
    if (typeof payload.jti !== 'string' || jtis.has(payload.jti)) return refuse(res, seen, 'jti replayed', 'invalid_dpop_proof');
    if (payload.ath !== b64sha256(m[1]!)) return refuse(res, seen, 'ath mismatch', 'invalid_dpop_proof');
    if (state.requireNonce && payload.nonce !== state.nonce) return refuse(res, seen, 'nonce', 'use_dpop_nonce');
    jtis.add(payload.jti);
    const token = await provider().provider.AccessToken.find(m[1]!);
    if (!token || token.isExpired) return refuse(res, seen, 'unknown token');
    if (!token.jkt || token.jkt !== (await calculateJwkThumbprint(jwk))) return refuse(res, seen, 'cnf.jkt mismatch');
    seen.outcome = 'ok';
    res.locals.sub = token.accountId;
    next();
  });
  app.get('/v1/me', (_req, res) => res.json({ sub: res.locals.sub as string }));
  app.post('/v1/echo', express.json(), (req, res) => res.json({ sub: res.locals.sub as string, received: req.body as unknown }));
  // Echoes the proof it received (a careless API): the package must not hand it back to the app.
  app.get('/v1/echo-proof', (req, res) => res.json({ proof: req.headers.dpop }));
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
