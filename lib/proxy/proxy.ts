import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { Request, RequestHandler, Response } from 'express';
import { LoginRequiredError, OAuthError, OriginNotAllowedError, UpstreamTimeoutError, createOAuthError } from '../errors.js';
import { isOwnScript } from './csrf.js';
import { pickHeaders } from './headers.js';
import { resolveProxyOptions, type OAuthProxyOptions, type ResolvedProxy } from './options.js';
import { mapPath } from './path.js';
import { GuardedBody, TooLargeError, maskBody, redactText, tokenForms } from './redact.js';
import { sendProxyError } from './respond.js';
import { oauthSeam, type OAuthCredentials, type OAuthSeam } from './seams.js';
import { NonceCache, createProof, isNonceChallenge, readNonce } from '../dpop.js';

const bad = (code: 'invalid_path' | 'invalid_request', message: string) => createOAuthError(code, message);
const upstreamError = (message: string) => createOAuthError('upstream_error', message);
const tooLarge = () => createOAuthError('request_too_large', 'Request body too large.');

/** The last DPoP-Nonce each API origin sent (RFC 9449 §9): server state, shared by all proxies of the process. */
const nonces = new NonceCache();

/** `Authorization` (Bearer, or DPoP with a fresh proof for this method and URL, RFC 9449 §7) for one upstream request. */
async function authorization(p: ResolvedProxy, method: string, path: string, cred: OAuthCredentials): Promise<Record<string, string>> {
  if (!cred.dpop) return { authorization: `Bearer ${cred.token}` };
  const htu = `${p.target.origin}${path.split('?')[0]!}`;
  return { authorization: `DPoP ${cred.token}`, dpop: await createProof(cred.dpop, method, htu, cred.token, nonces.get(p.target.origin)) };
}

const DECODERS: Record<string, () => zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

/**
 * A same-origin API proxy for browser apps (the BFF pattern): the browser calls `<mount>/<path>` with the
 * anti-CSRF header, the server calls `<target>/<path>` with the user's access token, and the answer
 * streams back. Same guarantees as `req.oauthClient`: the token goes only to `apiBaseUrl` origins, it is
 * refreshed before expiry (once across concurrent requests and processes), a 401 triggers one refresh and
 * one replay for requests without a body, one deadline covers headers and bodies both ways, both bodies
 * are capped and streamed, redirects are passed back without `Location` (never followed), proxy variables
 * are ignored, and no token reaches the browser (headers redacted, body masked while streaming).
 *
 * Mount it after `oauth()` and before any body parser.
 *
 * @example
 * ```ts
 * app.use(auth);
 * app.use('/api/github', oauthProxy({ target: 'https://api.github.com' }));
 * // browser: fetch('/api/github/user', { headers: { 'X-CSRF': '1' } })
 * ```
 */
export function oauthProxy(options: OAuthProxyOptions): RequestHandler {
  const p = resolveProxyOptions(options);
  return function oauthProxyMiddleware(req, res, next) {
    let seam: OAuthSeam;
    try {
      seam = oauthSeam(req, 'oauthProxy', p.provider);
    } catch (err) {
      return next(err);
    }
    forward(p, seam, req, res).catch((err: unknown) => {
      if (!(err instanceof OAuthError)) {
        seam.logger.error('oauthProxy: unexpected error', { error: err instanceof Error ? err.name : typeof err });
        err = upstreamError('Proxy failure.');
      }
      const e = err as OAuthError;
      if (e.status >= 500 && e.code !== 'store_unavailable') seam.logger.warn(`oauthProxy ${req.method}: ${e.message}`, { code: e.code });
      sendProxyError(res, e, e.code === 'request_too_large' ? { Connection: 'close' } : e.code === 'method_not_allowed' ? { Allow: p.allow } : {});
    });
  };
}

async function forward(p: ResolvedProxy, seam: OAuthSeam, req: Request, res: Response): Promise<void> {
  if (!isOwnScript(req, seam.appOrigin, p.csrfHeader, p.csrfValue)) {
    throw createOAuthError('cross_site_request', 'Cross-site API call refused.');
  }
  if (!p.methods.has(req.method)) {
    throw createOAuthError('method_not_allowed', 'Method not allowed.');
  }
  const url = req.url;
  const q = url.indexOf('?');
  const path = mapPath(p.basePath, q === -1 ? url : url.slice(0, q));
  if (path === undefined) throw bad('invalid_path', 'The path would leave the proxied prefix.');
  const upstreamPath = q === -1 ? path : path + url.slice(q);

  // Framing: Node's parser already refuses most smuggling forms; refuse what is left, never re-frame silently.
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  if (te !== undefined && cl !== undefined) throw bad('invalid_request', 'Both Content-Length and Transfer-Encoding.');
  if (te !== undefined && te.toLowerCase() !== 'chunked') throw bad('invalid_request', 'Unsupported Transfer-Encoding.');
  if (cl !== undefined && !/^\d{1,15}$/.test(cl)) throw bad('invalid_request', 'Invalid Content-Length.');
  if (cl !== undefined && Number(cl) > p.maxRequestBytes) throw tooLarge();
  const hasBody = te !== undefined || (cl !== undefined && Number(cl) > 0);
  if (hasBody && (req as { _body?: boolean })._body) {
    throw createOAuthError('config_invalid', 'oauthProxy: a body parser consumed the request body; mount the proxy before it.');
  }
  if (!seam.isAuthenticated) throw seam.notLoggedIn();
  if (!seam.apiOrigins.has(p.origin)) throw new OriginNotAllowedError(p.origin);

  let cred = await seam.credentials();
  const exchange = new Exchange();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    exchange.end();
  }, p.timeout ?? seam.httpTimeout);
  // The answer is complete, or the browser went away (then the upstream exchange ends with it).
  res.once('close', () => {
    clearTimeout(timer);
    if (!res.writableFinished) exchange.end();
  });
  const failed = (err: unknown): OAuthError =>
    err instanceof OAuthError
      ? err
      : timedOut
        ? new UpstreamTimeoutError()
        : err instanceof TooLargeError
          ? tooLarge()
          : upstreamError('The API could not be reached.');

  try {
    let upstream = await send(p, seam, req, upstreamPath, cred, hasBody ? req : undefined, exchange);
    if (cred.dpop) {
      const nonce = readNonce(upstream.headers['dpop-nonce']);
      nonces.set(p.target.origin, nonce);
      // A nonce challenge: answered once, when there is no streamed body to lose.
      if (!hasBody && nonce !== undefined && isNonceChallenge(upstream.statusCode ?? 0, upstream.headers['www-authenticate'])) {
        upstream.resume();
        upstream = await send(p, seam, req, upstreamPath, cred, undefined, exchange);
        nonces.set(p.target.origin, readNonce(upstream.headers['dpop-nonce']));
      }
    }
    if (upstream.statusCode === 401) {
      const rejected = cred.token;
      if (!hasBody) {
        // Nothing to lose: discard this answer, refresh (unless another request already did), replay once.
        upstream.resume();
        cred = await seam.credentials({ rejected });
        upstream = await send(p, seam, req, upstreamPath, cred, undefined, exchange);
      } else {
        // The body was streamed and is gone: no replay. Refresh for the next call, and pass the 401 on.
        upstream.pause();
        try {
          await seam.accessToken({ rejected });
        } catch (err) {
          upstream.destroy();
          if (err instanceof LoginRequiredError) throw err;
        }
      }
    }
    seam.telemetry.apiCall('proxy', upstream.statusCode ?? 0);
    await relay(p, res, upstream, cred.forms ?? tokenForms(cred.token));
  } catch (err) {
    throw failed(err);
  }
}

/**
 * The upstream side of one proxied call, ended on the deadline or when the browser goes away: every upstream
 * request still open is destroyed (with its response, if one is being relayed or drained), and any later one
 * at once. Not an `AbortController` passed as `signal`: in Node 20 a controller and the listener Node adds to
 * its signal cost several µs per call (docs/performance.md); this is a set and a `destroy()`.
 */
class Exchange {
  private ended = false;
  /** Upstream requests still open (a first answer being drained after a 401 or a DPoP nonce challenge too). */
  private readonly open = new Set<http.ClientRequest>();

  track(upReq: http.ClientRequest): void {
    if (this.ended) return void upReq.destroy(new Error('The proxied call has ended.'));
    this.open.add(upReq);
    upReq.once('close', () => this.open.delete(upReq));
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const upReq of this.open) upReq.destroy(new Error('The proxied call has ended.'));
    this.open.clear();
  }
}

/** Sends one upstream request; resolves with the response head. The request body (if any) is piped with its cap. */
async function send(
  p: ResolvedProxy,
  seam: OAuthSeam,
  req: Request,
  path: string,
  cred: OAuthCredentials,
  body: Readable | undefined,
  exchange: Exchange,
) {
  const auth = await authorization(p, req.method, path, cred);
  return new Promise<http.IncomingMessage>((resolve, reject) => {
    const headers: Record<string, string | string[]> = {
      ...pickHeaders(req.headers, p.requestHeaders),
      ...p.extra,
      ...auth,
      // The body must be readable to mask a reflected token; a compressed answer is decoded anyway.
      'accept-encoding': 'identity',
    };
    const cl = req.headers['content-length'];
    if (cl !== undefined) headers['content-length'] = cl;
    const secure = p.target.protocol === 'https:';
    let upReq: http.ClientRequest;
    try {
      upReq = (secure ? https : http).request({
        protocol: p.target.protocol,
        hostname: p.target.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: p.target.port || undefined,
        method: req.method,
        path,
        headers,
        agent: secure ? seam.agents.https : seam.agents.http,
        insecureHTTPParser: false,
      });
      exchange.track(upReq);
    } catch {
      // Node refuses characters it would not put on a request line.
      return reject(bad('invalid_path', 'Invalid characters in the path or query.'));
    }
    let uploadFailure: Error | undefined;
    upReq.once('response', resolve);
    upReq.once('error', (err) => reject(uploadFailure ?? err));
    if (!body) return void upReq.end();
    const guard = new GuardedBody(p.maxRequestBytes, undefined);
    guard.once('error', (err) => {
      uploadFailure = err;
      body.unpipe(guard);
      upReq.destroy(err);
    });
    body.once('error', (err) => upReq.destroy(err));
    body.pipe(guard).pipe(upReq);
  });
}

/** Bodies up to this many bytes with a `Content-Length` and no encoding are relayed buffered (see `relayBuffered`). */
const BUFFERED_MAX = 64 * 1024;

/** The upstream body read whole (its length declared and capped by the caller), the token masked, sent at once. */
function relayBuffered(p: ResolvedProxy, res: Response, upstream: http.IncomingMessage, forms: readonly string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      upstream.destroy();
      reject(err);
    };
    upstream.on('data', (chunk: Buffer) => chunks.push(chunk));
    upstream.once('error', fail);
    upstream.once('aborted', () => fail(new Error('upstream aborted')));
    upstream.once('end', () => {
      if (settled) return;
      settled = true;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      if (p.redactBody) maskBody(body, forms);
      if (res.destroyed) return resolve();
      res.once('finish', () => resolve());
      res.once('close', () => resolve());
      res.end(body);
    });
  });
}

/** Streams the upstream answer back: allowed headers (token redacted), body decoded if needed, capped and masked. */
function relay(p: ResolvedProxy, res: Response, upstream: http.IncomingMessage, forms: readonly string[]): Promise<void> {
  const declared = upstream.headers['content-length'];
  if (declared !== undefined && Number(declared) > p.maxResponseBytes) {
    upstream.destroy();
    throw upstreamError('The API answer exceeds maxResponseBytes.');
  }
  const encoding = (upstream.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  const decoder = encoding === 'identity' ? undefined : DECODERS[encoding];
  if (encoding !== 'identity' && !decoder) {
    upstream.destroy();
    throw upstreamError('The API answered with an unsupported Content-Encoding.');
  }
  res.statusCode = upstream.statusCode ?? 502;
  const headers = pickHeaders(upstream.headers, p.responseHeaders);
  for (const [name, value] of Object.entries(headers)) {
    res.setHeader(name, Array.isArray(value) ? value.map((v) => redactText(v, forms)) : redactText(value, forms));
  }
  // Masking keeps the length; decoding does not.
  if (declared !== undefined && !decoder) res.setHeader('Content-Length', declared);
  res.setHeader('X-Content-Type-Options', 'nosniff');

  // A small body of known length, not encoded: read whole, masked once, sent in one write. The streamed path
  // (a Transform and two pipes) costs more than such a body's bytes.
  if (declared !== undefined && !decoder && Number(declared) <= BUFFERED_MAX) return relayBuffered(p, res, upstream, forms);
  const guard = new GuardedBody(p.maxResponseBytes, p.redactBody ? forms : undefined);
  return new Promise<void>((resolve, reject) => {
    const source: Readable = decoder ? upstream.pipe(decoder()) : upstream;
    const fail = (err: Error) => {
      source.unpipe(guard);
      guard.unpipe(res);
      upstream.destroy();
      reject(err instanceof TooLargeError ? upstreamError('The API answer exceeds maxResponseBytes.') : err);
    };
    upstream.once('error', fail);
    upstream.once('aborted', () => fail(new Error('upstream aborted')));
    if (decoder) source.once('error', fail);
    guard.once('error', fail);
    res.once('finish', () => resolve());
    res.once('close', () => resolve());
    source.pipe(guard).pipe(res);
  });
}
