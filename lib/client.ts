import http from 'node:http';
import https from 'node:https';
import axios, {
  AxiosError,
  AxiosHeaders,
  type AxiosAdapter,
  type AxiosInstance,
  type AxiosRequestConfig,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios';
import type { ResolvedConfig } from './config.js';
import { REDACTED, redactText, tokenForms } from './redaction.js';
import { telemetryOf } from './telemetry.js';
import { NonceCache, createProof, isNonceChallenge, proofTarget, readNonce, type DPoPKey } from './dpop.js';
import { OriginNotAllowedError, UpstreamTimeoutError, createOAuthError } from './errors.js';

/** Agents shared by every per-request client of one `oauth()` instance: connections are reused, user state is not. */
export interface SharedAgents {
  http: http.Agent;
  https: https.Agent;
}

export function createAgents(): SharedAgents {
  return {
    http: new http.Agent({ keepAlive: true, maxSockets: 256 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 256 }),
  };
}

/** Source of the user's access token for one request (reads the store lazily, refreshes when needed). */
export interface AccessTokenSource {
  accessToken(options?: { rejected?: string }): Promise<string>;
  /** The error to raise instead of an API's 403 with this `WWW-Authenticate` (RFC 6750 `insufficient_scope`), if any. */
  forbidden?(wwwAuthenticate: unknown, cause: unknown): Error | undefined;
  /** The token with its DPoP key when it is DPoP-bound (RFC 9449): it is then sent with the `DPoP` scheme and a proof. */
  credentials?(): Promise<AccessCredentials>;
}

/** An access token as sent: bearer, or DPoP-bound with the key that signs its proofs. */
export interface AccessCredentials {
  token: string;
  dpop: DPoPKey | undefined;
  /** The token's forms to redact (see `tokenForms`), when the source has them already computed. */
  forms?: readonly string[];
}

const kRetried = Symbol('express-oauth-client.retried');

/**
 * The config key that carries a call's token source from the facade to the guarded adapter. A string key
 * (axios's config merge keeps it, by reference); an app's own value is always overwritten by the facade,
 * and the adapter never forwards it.
 */
const SOURCE = 'oauthTokenSource';
type SourcedConfig = { [SOURCE]?: SourceHandle };

/** The token source behind a handle (assigned in `SourceHandle`'s static block, the only code that can read it). */
let sourceOfHandle: (handle: unknown) => AccessTokenSource | undefined;
/**
 * What a call's config carries instead of the token source itself: an opaque object whose only field is
 * private (an app that logs `err.config` sees `SourceHandle {}`; nothing reflective reaches the source).
 * A private field rather than a WeakMap entry: the garbage collector handles every live WeakMap entry as
 * an ephemeron, which cost about 1 µs per entry and request (docs/performance.md).
 */
class SourceHandle {
  readonly #source: AccessTokenSource;
  constructor(source: AccessTokenSource) {
    this.#source = source;
  }
  static {
    // Module-private, not a static method: `handle.constructor` is reachable from any config an app sees.
    sourceOfHandle = (handle) => (typeof handle === 'object' && handle !== null && #source in handle ? handle.#source : undefined);
  }
}
/** The handle of a failed call, for the 401 replay and the 403 scope check (it is removed from `err.config`). */
const errorHandles = new WeakMap<object, SourceHandle>();
const sourceOf = (config: SourcedConfig | undefined) => sourceOfHandle(config?.[SOURCE]);
type TaggedConfig = InternalAxiosRequestConfig & { [kRetried]?: boolean };

/** axios's own Node http adapter: the only transport the guarded adapter dispatches through. */
const httpAdapter = axios.getAdapter('http');

/**
 * The token an upstream 401 rejected, per error: kept off the error object itself so that nothing the app
 * inspects or serializes holds it.
 */
const rejectedToken = new WeakMap<object, string>();

const IDEMPOTENT = new Set(['get', 'head', 'options', 'put', 'delete', 'trace']);

/**
 * A request is sent again after a 401 only when that cannot change its effect: an idempotent method and a
 * body that is fully in memory (a stream has been consumed by the first attempt).
 */
/** A reset of a reused keep-alive socket, before any response (the request may not have reached the API). */
function resetOnReusedSocket(err: unknown): boolean {
  return (
    err instanceof AxiosError &&
    !err.response &&
    err.code === 'ECONNRESET' &&
    (err.request as { reusedSocket?: boolean } | undefined)?.reusedSocket === true
  );
}

function replayable(config: InternalAxiosRequestConfig): boolean {
  return IDEMPOTENT.has((config.method ?? 'get').toLowerCase()) && bodyInMemory(config);
}

/** Whether the body can be sent a second time (a stream has been consumed by the first attempt). */
function bodyInMemory(config: InternalAxiosRequestConfig): boolean {
  const d: unknown = config.data;
  return (
    d === undefined ||
    d === null ||
    typeof d === 'string' ||
    Buffer.isBuffer(d) ||
    d instanceof URLSearchParams ||
    d instanceof ArrayBuffer ||
    ArrayBuffer.isView(d) ||
    (typeof d === 'object' && (Object.getPrototypeOf(d) === Object.prototype || Array.isArray(d)))
  );
}

const REDACTED_BYTES = Buffer.from(REDACTED);

function redactBuffer(buf: Buffer, forms: readonly string[]): Buffer {
  for (const f of forms) {
    let i = buf.indexOf(f);
    if (i === -1) continue;
    const parts: Buffer[] = [];
    let start = 0;
    while (i !== -1) {
      parts.push(buf.subarray(start, i), REDACTED_BYTES);
      start = i + Buffer.byteLength(f);
      i = buf.indexOf(f, start);
    }
    parts.push(buf.subarray(start));
    buf = Buffer.concat(parts);
  }
  return buf;
}

/** Removes the token from the status text and every header value of a response (an API may echo the request). */
function redactHeaders(response: AxiosResponse, forms: readonly string[]): void {
  if (typeof response.statusText === 'string') response.statusText = redactText(response.statusText, forms);
  const headers = response.headers as Record<string, unknown> | undefined;
  if (!headers) return;
  for (const key of Object.keys(headers)) {
    const v = headers[key];
    if (typeof v === 'string') headers[key] = redactText(v, forms);
    else if (Array.isArray(v)) headers[key] = (v as unknown[]).map((x) => (typeof x === 'string' ? redactText(x, forms) : x));
  }
}

/**
 * The body was read as bytes (the dispatched `responseType` is `arraybuffer`): remove the token from the
 * bytes, then decode it as the app asked (what axios's http adapter does), and redact the text once more
 * (covers encodings in which the token's bytes differ, e.g. `utf16le`).
 */
function redactBody(response: AxiosResponse, wanted: string | undefined, encoding: BufferEncoding | undefined, forms: readonly string[]): void {
  const data = response.data as unknown;
  if (!Buffer.isBuffer(data)) return;
  const bytes = redactBuffer(data, forms);
  if (wanted === 'arraybuffer') {
    response.data = bytes;
    return;
  }
  let text = bytes.toString(encoding);
  if ((!encoding || encoding === 'utf8') && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  response.data = redactText(text, forms);
}

/**
 * Removes what could carry a token from an error or response handed back: the dispatched config (it holds the
 * `Authorization` header) is replaced by the app's config (which never held it), the raw request (its `_header`
 * holds the token) and the shared agents (their sockets hold other users' requests in flight) are dropped.
 * Follows the `cause` chain of wrapped axios errors.
 */
function scrub(target: unknown, appConfig: InternalAxiosRequestConfig | undefined): void {
  for (let depth = 0; depth < 5 && target && typeof target === 'object'; depth++) {
    const t = target as { config?: InternalAxiosRequestConfig; request?: unknown; response?: AxiosResponse; rawPacket?: unknown; cause?: unknown };
    if ('config' in t && t.config) {
      t.config = appConfig ?? t.config;
      const headers = t.config.headers;
      if (headers && typeof headers.get === 'function' && headers.has('Authorization')) headers.set('Authorization', REDACTED);
      // Only when set: adding properties to the config object would grow it on every call.
      if (t.config.httpAgent !== undefined) t.config.httpAgent = undefined;
      if (t.config.httpsAgent !== undefined) t.config.httpsAgent = undefined;
      // The token-source handle is a capability (replaying this config through any axios instance would
      // send with it): it does not stay on what is handed back. (Assigned, not deleted: a delete turns the
      // config into a slow dictionary-mode object on every call.)
      if ((t.config as SourcedConfig)[SOURCE] !== undefined) (t.config as SourcedConfig)[SOURCE] = undefined;
    }
    // The ClientRequest keeps the raw header block (`_header`), token included.
    if ('request' in t) t.request = undefined;
    // Node's HTTP parser errors keep the raw bytes of a malformed response (which may echo the request).
    if ('rawPacket' in t) t.rawPacket = undefined;
    if (t.response) {
      t.response.request = undefined;
      t.response.config = t.config ?? appConfig ?? t.response.config;
    }
    target = t.cause;
  }
}

type CancelListener = (reason?: unknown) => void;

/**
 * A call's deadline, handed to axios's http adapter as the call's `cancelToken`: the adapter subscribes its
 * abort (`subscribe`), which destroys the request or the response stream, and unsubscribes once the call
 * (or a streamed body) is over. When `ms` pass first, the abort runs without a reason (axios then rejects
 * with a `CanceledError`, turned into an {@link UpstreamTimeoutError}). The app's own `cancelToken` is
 * forwarded to it (the adapter takes one), and the app's `signal` goes to the adapter as it is.
 *
 * Not an `AbortController` with a timer: in Node 20 a controller, its signal and the adapter's listener on
 * it cost about 7 µs per call on the benchmark machine against 0.3 µs for this (docs/performance.md), and
 * `AbortSignal.any()` (to merge the app's signal) more.
 */
class CallDeadline {
  private readonly listeners: CancelListener[] = [];
  private cancelled = false;
  private reason: unknown = undefined;
  /** Whether the deadline passed (as opposed to the app cancelling the call). */
  timedOut = false;
  private readonly timer: NodeJS.Timeout;
  private readonly forward: CancelListener | undefined;

  constructor(
    ms: number,
    private readonly appToken: unknown,
  ) {
    this.timer = setTimeout(() => {
      if (this.cancelled) return;
      this.timedOut = true;
      this.cancel(undefined);
    }, ms);
    this.timer.unref();
    if (isCancelToken(appToken)) appToken.subscribe((this.forward = (reason) => this.cancel(reason)));
  }

  private cancel(reason: unknown): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.reason = reason;
    for (const listener of this.listeners.splice(0)) listener(reason);
  }

  /** axios's http adapter: called with its abort function. */
  subscribe(listener: CancelListener): void {
    if (this.cancelled) listener(this.reason);
    else this.listeners.push(listener);
  }

  unsubscribe(listener: CancelListener): void {
    const i = this.listeners.indexOf(listener);
    if (i !== -1) this.listeners.splice(i, 1);
  }

  /** The call is over (its body read, or its stream closed): the timer and the app's token let go. */
  end(): void {
    clearTimeout(this.timer);
    this.listeners.length = 0;
    if (this.forward) (this.appToken as CancelTokenLike).unsubscribe(this.forward);
  }
}

interface CancelTokenLike {
  subscribe(listener: CancelListener): void;
  unsubscribe(listener: CancelListener): void;
}
const isCancelToken = (t: unknown): t is CancelTokenLike =>
  typeof t === 'object' &&
  t !== null &&
  typeof (t as CancelTokenLike).subscribe === 'function' &&
  typeof (t as CancelTokenLike).unsubscribe === 'function';

const API_NOT_CONFIGURED = "req.oauthClient: no apiBaseUrl was configured in oauth(); set apiBaseUrl to the API the user's token is for.";
const PROTOCOLS = new Set(['http:', 'https:']);
const FRAMING_HEADERS = [
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'proxy-connection',
];
/** Header names the app may not set on a call (lowercase): framing, hop-by-hop, and the DPoP proof. */
const DROPPED_HEADERS = new Set([...FRAMING_HEADERS, 'dpop']);
const ABSOLUTE = /^([a-z][a-z\d+\-.]*:)?\/\//i;

/**
 * The URL a config designates, resolved as axios does (`baseURL`, `url`, `allowAbsoluteUrls`), and refused
 * unless it is on one of the configured API origins. Credentials in the URL are dropped (axios would send
 * them as Basic authentication instead of the bearer token).
 */
function checkedUrl(cfg: ResolvedConfig, config: InternalAxiosRequestConfig): URL {
  // A login-only app (no apiBaseUrl) has nowhere to send a token: refuse before anything is read or sent.
  if (cfg.apiBaseUrl === undefined) throw createOAuthError('api_not_configured', API_NOT_CONFIGURED);
  const url = config.url == null ? '' : String(config.url);
  const base = config.baseURL == null ? '' : String(config.baseURL);
  const full =
    base && (!ABSOLUTE.test(url) || config.allowAbsoluteUrls === false)
      ? url
        ? `${base.replace(/\/+$/, '')}/${url.replace(/^\/+/, '')}`
        : base
      : url;
  let target: URL;
  try {
    target = new URL(full);
  } catch {
    throw new OriginNotAllowedError('(an unparseable URL)');
  }
  if (!PROTOCOLS.has(target.protocol)) throw new OriginNotAllowedError(target.protocol);
  if (!cfg.apiOrigins.has(target.origin)) throw new OriginNotAllowedError(target.origin);
  target.username = '';
  target.password = '';
  return target;
}

/**
 * The per-request authorized client: an axios instance that sends the user's access token only to the
 * configured API origins, follows no redirects, has a deadline and a size cap, ignores proxy variables,
 * and retries once after a 401 with a refreshed token.
 *
 * Every request goes through one guarded adapter, which runs last (after interceptors and
 * `transformRequest`). It resolves the final URL, refuses any origin outside `apiBaseUrl`, and only then
 * reads the token and dispatches through axios's http adapter with a config rebuilt from an allowlist:
 *
 * - taken from the app's config: `method`, `headers` (except `Host` and `Authorization`), `params`,
 *   `paramsSerializer`, `data`, `timeout` (capped at `httpTimeout`), `timeoutErrorMessage`, `responseType`,
 *   `responseEncoding`, `validateStatus`, `maxContentLength` (capped at `maxResponseBytes`), `maxBodyLength`,
 *   `maxRate`, `onUploadProgress`, `onDownloadProgress`, `cancelToken`, `signal`, `transitional`,
 *   `formDataHeaderPolicy`;
 * - forced: the checked URL (no `baseURL`), `Authorization: Bearer <token>`, `maxRedirects: 0`,
 *   `proxy: false`, the shared agents, HTTP/1.1, `decompress: true`, the strict HTTP parser, the deadline;
 * - ignored: everything else, in particular `socketPath`, `lookup`, `family`, `transport`, `httpVersion`,
 *   `http2Options`, `beforeRedirect`, `proxy`, `httpAgent`/`httpsAgent`, `insecureHTTPParser`, `auth`,
 *   `env`, `fetchOptions`.
 *
 * An explicit `adapter` in a call's config is refused with {@link OriginNotAllowedError} before anything is
 * sent (a mock or custom adapter silently replaced by a real request would be worse). An adapter swapped in by
 * a `transformRequest` hook runs without the token: the token is attached by the guarded adapter only.
 *
 * Responses and errors handed back hold no token: the dispatched config and the raw request are replaced or
 * removed, and the token used for the call is redacted from buffered bodies (before `transformResponse`, so
 * from parsed JSON too), header values and the status text, on success and on error. A body requested with
 * `responseType: 'stream'` is passed through as is (its headers are redacted): an API that reflects the
 * request into a streamed body exposes the token to whoever reads that stream, so do not log or forward such
 * streams from APIs that echo requests.
 */
function createSharedClient(cfg: ResolvedConfig, agents: SharedAgents): SharedClient {
  const telemetry = telemetryOf(cfg);
  // The last DPoP-Nonce each API origin sent (RFC 9449 §8-9): server state, not user state.
  const nonces = new NonceCache();
  const guarded: AxiosAdapter = async (config) => {
    const target = checkedUrl(cfg, config);
    const handle = (config as SourcedConfig)[SOURCE];
    const source = sourceOf(config as SourcedConfig);
    if (!source) throw new OriginNotAllowedError('(a request without a user)');
    const wanted = config.responseType;
    const encoding = config.responseEncoding as BufferEncoding | undefined;
    if (encoding !== undefined && !Buffer.isEncoding(encoding))
      throw new AxiosError('Unknown responseEncoding', AxiosError.ERR_BAD_OPTION_VALUE, config);
    const headers = new AxiosHeaders(config.headers);
    // Framing is axios's and Node's to compute: a Content-Length or Transfer-Encoding from the app could
    // desync the shared keep-alive connection and splice the next user's request (token included) into
    // this one's body. Hop-by-hop headers go too, and a DPoP proof is the package's to make.
    // One pass over the names the app set (most calls set none of these).
    for (const name of Object.keys(headers)) if (DROPPED_HEADERS.has(name.toLowerCase())) headers.delete(name);
    const credentials = source.credentials ? await source.credentials() : { token: await source.accessToken(), dpop: undefined, forms: undefined };
    const { token, dpop } = credentials;
    headers.set('Authorization', `${dpop ? 'DPoP' : 'Bearer'} ${token}`);
    // RFC 9449 §7: a proof per request, for the final checked URL (no query or fragment) and method, bound to the token.
    const proofs: string[] = [];
    const htu = dpop ? proofTarget(target) : '';
    const sign = async () => {
      const proof = await createProof(dpop!, (config.method ?? 'get').toUpperCase(), htu, token, nonces.get(target.origin));
      proofs.push(proof);
      headers.set('DPoP', proof);
    };
    if (dpop) await sign();
    // axios's timeout stops at the response headers; this deadline also covers a slow-drip body. It starts
    // once the token is in hand: waiting for a refresh has bounds of its own.
    const deadline = new CallDeadline(cfg.httpTimeout, config.cancelToken);
    const userSignal = config.signal as AbortSignal | undefined;
    const maxContentLength =
      config.maxContentLength! > 0 && config.maxContentLength! <= cfg.maxResponseBytes ? config.maxContentLength : cfg.maxResponseBytes;
    const dispatched = {
      url: target.href,
      method: config.method,
      headers,
      params: config.params as unknown,
      paramsSerializer: config.paramsSerializer,
      data: config.data as unknown,
      timeout: Math.min(config.timeout || cfg.httpTimeout, cfg.httpTimeout),
      timeoutErrorMessage: config.timeoutErrorMessage,
      responseType: wanted === 'stream' ? 'stream' : 'arraybuffer',
      validateStatus: config.validateStatus,
      maxContentLength,
      maxBodyLength: config.maxBodyLength,
      maxRate: config.maxRate,
      onUploadProgress: config.onUploadProgress,
      onDownloadProgress: config.onDownloadProgress,
      cancelToken: deadline,
      signal: userSignal,
      transitional: config.transitional,
      formDataHeaderPolicy: (config as { formDataHeaderPolicy?: unknown }).formDataHeaderPolicy,
      maxRedirects: 0,
      proxy: false,
      httpAgent: agents.http,
      httpsAgent: agents.https,
      decompress: true,
      insecureHTTPParser: false,
    } as unknown as InternalAxiosRequestConfig;
    let forms: readonly string[] | undefined;
    /** Notes the API's nonce; true when the response is a nonce challenge worth answering (once, with a body that can be re-sent). */
    const challenged = (status: number, h: unknown, retried: boolean): boolean => {
      if (!dpop) return false;
      const rh = h as Record<string, unknown> | undefined;
      const nonce = readNonce(rh?.['dpop-nonce']);
      nonces.set(target.origin, nonce);
      return !retried && nonce !== undefined && isNonceChallenge(status, rh?.['www-authenticate']) && bodyInMemory(config);
    };
    /**
     * One dispatch. A keep-alive socket the API closed as idle just as it was reused fails with ECONNRESET
     * before any response: an idempotent request with its body in memory is sent once more on a new socket
     * (what Node's documentation advises, and what browsers do), with a fresh DPoP proof.
     */
    const dispatch = async (): Promise<AxiosResponse> => {
      try {
        return await httpAdapter(dispatched);
      } catch (err) {
        if (!resetOnReusedSocket(err) || !replayable(config)) throw err;
        if (dpop) await sign();
        return httpAdapter(dispatched);
      }
    };
    const send = async (): Promise<AxiosResponse> => {
      try {
        const first = await dispatch();
        if (!challenged(first.status, first.headers, false)) return first;
      } catch (err) {
        const r = err instanceof AxiosError ? err.response : undefined;
        if (!r || !challenged(r.status, r.headers, false)) throw err;
      }
      telemetry.apiCall('client', 401);
      await sign();
      const second = await dispatch().catch((err: unknown) => {
        const r = err instanceof AxiosError ? err.response : undefined;
        if (r) challenged(r.status, r.headers, true);
        throw err;
      });
      challenged(second.status, second.headers, true);
      return second;
    };
    const formsOf = (): readonly string[] => {
      const own = credentials.forms ?? tokenForms(token);
      return proofs.length ? [...own, ...proofs] : own;
    };
    let streaming = false;
    try {
      const response = await send();
      telemetry.apiCall('client', response.status);
      forms = formsOf();
      scrub(response, config);
      redactHeaders(response, forms);
      const data = response.data as
        { prependListener?: (e: 'error', l: (err: unknown) => void) => unknown; once?: (e: 'close', l: () => void) => unknown } | undefined;
      // A streamed body fails later (size cap, deadline) with an AxiosError of its own: scrub that too. The
      // deadline runs until the stream is over.
      if (wanted === 'stream' && data && typeof data.prependListener === 'function') {
        data.prependListener('error', (err) => scrub(err, config));
        if (typeof data.once === 'function') {
          streaming = true;
          data.once('close', () => deadline.end());
        }
      } else redactBody(response, wanted, encoding, forms);
      return response;
    } catch (err) {
      telemetry.apiCall('client', err instanceof AxiosError ? (err.response?.status ?? 0) : 0);
      scrub(err, config);
      if (err instanceof AxiosError && err.response) {
        forms ??= formsOf();
        redactHeaders(err.response, forms);
        redactBody(err.response, wanted, encoding, forms);
      }
      const timedOut = deadline.timedOut || (err instanceof AxiosError && (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT'));
      if (timedOut && !userSignal?.aborted) throw new UpstreamTimeoutError(err);
      if (err instanceof AxiosError && err.response?.status === 401) rejectedToken.set(err, token);
      if (err instanceof AxiosError && handle) errorHandles.set(err, handle);
      throw err;
    } finally {
      if (!streaming) deadline.end();
    }
  };

  const instance = axios.create({
    baseURL: cfg.apiBaseUrl,
    timeout: cfg.httpTimeout,
    maxContentLength: cfg.maxResponseBytes,
    maxBodyLength: cfg.maxResponseBytes,
    maxRedirects: 0,
    proxy: false,
    adapter: guarded,
  });
  installInterceptors(instance, guarded);
  return { instance, adapter: guarded };
}

/** The interceptors every instance carrying users' tokens has: the adapter check and the 401 replay. */
function installInterceptors(instance: AxiosInstance, guarded: AxiosAdapter): void {
  // Synchronous: no promise hop before dispatch. The destination is checked in the adapter, after every hook.
  instance.interceptors.request.use(
    (config) => {
      if (config.adapter !== guarded) {
        throw new OriginNotAllowedError(
          '(a custom adapter)',
          'Refused to send a request through a custom `adapter`: req.oauthClient only sends through its own.',
        );
      }
      return config;
    },
    undefined,
    { synchronous: true },
  );

  instance.interceptors.response.use(undefined, async (error: unknown) => {
    if (!(error instanceof AxiosError)) throw error;
    const config = error.config as (TaggedConfig & SourcedConfig) | undefined;
    const used = rejectedToken.get(error);
    const handle = errorHandles.get(error);
    const source = sourceOfHandle(handle);
    if (error.response?.status === 403 && source?.forbidden) {
      const replaced = source.forbidden(error.response.headers?.['www-authenticate'], error);
      if (replaced) throw replaced;
    }
    if (used !== undefined && config && source && !config[kRetried]) {
      // Refresh unless another request already replaced the rejected token; replay once when that is safe.
      await source.accessToken({ rejected: used });
      if (replayable(config)) {
        config[kRetried] = true;
        (config as SourcedConfig)[SOURCE] = handle;
        return instance.request(config);
      }
    }
    throw error;
  });
}

/** One axios instance per `oauth()` (per set of agents): it holds no user state, the token source travels with each call. */
interface SharedClient {
  instance: AxiosInstance;
  adapter: AxiosAdapter;
}

const shared = new WeakMap<SharedAgents, SharedClient>();

/**
 * `req.oauthClient`: a thin per-request facade over the instance's shared axios client. Each call carries
 * this request's token source in its config ({@link SOURCE}); the shared client holds no user state, so no
 * token, header or interceptor of one user is ever visible to another. Reading `defaults` or
 * `interceptors` (to change them) moves this request onto a private axios instance of its own, built with
 * the same guarded adapter and interceptors, so such changes never reach other requests.
 */
export function createOAuthClient(cfg: ResolvedConfig, agents: SharedAgents, source: AccessTokenSource): AxiosInstance {
  let client = shared.get(agents);
  if (!client) shared.set(agents, (client = createSharedClient(cfg, agents)));
  const st: FacadeState = { handle: new SourceHandle(source), client, own: undefined };
  const facade = function oauthClient(configOrUrl: string | AxiosRequestConfig, config?: AxiosRequestConfig) {
    return call(st, typeof configOrUrl === 'string' ? { ...config, url: configOrUrl } : { ...configOrUrl });
  } as unknown as Facade;
  Object.setPrototypeOf(facade, facadeProto);
  // Private state in a private field, not on the function: nothing an app inspects leads to the token source.
  FacadeSlot.stamp(facade, st);
  return facade as unknown as AxiosInstance;
}

type Facade = (configOrUrl: string | AxiosRequestConfig, config?: AxiosRequestConfig) => Promise<AxiosResponse>;
interface FacadeState {
  handle: SourceHandle;
  client: SharedClient;
  /** The private instance, once this request's code changed `defaults` or `interceptors`. */
  own: AxiosInstance | undefined;
}

/** Returns the object it is given, so that a subclass's private fields land on that object. */
class ReturnsTarget {
  constructor(target: object) {
    return target;
  }
}

/**
 * A facade's state in a private field of the facade function itself (the constructor-return idiom):
 * invisible to inspection, reflection and JSON like a WeakMap entry, without the garbage collector's
 * per-entry cost of a WeakMap (about 1-4 µs per request on the benchmark machine, docs/performance.md).
 * A facade method called on anything else throws a TypeError.
 */
class FacadeSlot extends ReturnsTarget {
  readonly #state: FacadeState;
  private constructor(facade: Facade, state: FacadeState) {
    super(facade);
    this.#state = state;
  }
  static stamp(facade: Facade, state: FacadeState): void {
    new FacadeSlot(facade, state);
  }
  static of(facade: Facade): FacadeState {
    return (facade as unknown as FacadeSlot).#state;
  }
}

function call(st: FacadeState, config: AxiosRequestConfig): Promise<AxiosResponse> {
  (config as AxiosRequestConfig & SourcedConfig)[SOURCE] = st.handle;
  return (st.own ?? st.client.instance).request(config);
}

/** A private instance for a request whose code changes `defaults` or `interceptors`. */
function own(f: Facade): AxiosInstance {
  const st = FacadeSlot.of(f);
  if (!st.own) {
    const { instance, adapter } = st.client;
    const mine = axios.create({ ...instance.defaults, headers: structuredClone(instance.defaults.headers) as AxiosRequestConfig['headers'] });
    installInterceptors(mine, adapter);
    st.own = mine;
  }
  return st.own;
}

const withoutBody = (method: string) =>
  function (this: Facade, url: string, config?: AxiosRequestConfig) {
    return call(FacadeSlot.of(this), { ...config, method, url });
  };
const withBody = (method: string) =>
  function (this: Facade, url: string, data?: unknown, config?: AxiosRequestConfig) {
    return call(FacadeSlot.of(this), { ...config, method, url, data });
  };
const formBody = (method: string) =>
  function (this: Facade, url: string, data?: unknown, config?: AxiosRequestConfig) {
    return own(this)[`${method}Form` as 'postForm'](url, data, { ...config, [SOURCE]: FacadeSlot.of(this).handle } as AxiosRequestConfig);
  };

const facadeProto = Object.create(Function.prototype, {
  request: {
    value(this: Facade, config: AxiosRequestConfig) {
      return call(FacadeSlot.of(this), { ...config });
    },
  },
  get: { value: withoutBody('get') },
  delete: { value: withoutBody('delete') },
  head: { value: withoutBody('head') },
  options: { value: withoutBody('options') },
  post: { value: withBody('post') },
  put: { value: withBody('put') },
  patch: { value: withBody('patch') },
  postForm: { value: formBody('post') },
  putForm: { value: formBody('put') },
  patchForm: { value: formBody('patch') },
  getUri: {
    value(this: Facade, config?: AxiosRequestConfig) {
      const st = FacadeSlot.of(this);
      return (st.own ?? st.client.instance).getUri(config);
    },
  },
  defaults: {
    get(this: Facade) {
      return own(this).defaults;
    },
  },
  interceptors: {
    get(this: Facade) {
      return own(this).interceptors;
    },
  },
  create: {
    value() {
      throw new TypeError('req.oauthClient.create() is not supported: configure the API with the apiBaseUrl option of oauth().');
    },
  },
}) as object;
