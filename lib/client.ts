import http from 'node:http';
import https from 'node:https';
import axios, { AxiosError, AxiosHeaders, type AxiosInstance, type AxiosResponse, type InternalAxiosRequestConfig } from 'axios';
import type { ResolvedConfig } from './config.js';
import { OriginNotAllowedError, UpstreamTimeoutError } from './errors.js';

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
}

const kToken = Symbol('express-oauth-client.token');
const kRetried = Symbol('express-oauth-client.retried');
const kDeadline = Symbol('express-oauth-client.deadline');
const kUserSignal = Symbol('express-oauth-client.user-signal');
type TaggedConfig = InternalAxiosRequestConfig & {
  [kToken]?: string;
  [kRetried]?: boolean;
  [kDeadline]?: AbortSignal;
  [kUserSignal]?: AbortSignal | null;
};

const IDEMPOTENT = new Set(['get', 'head', 'options', 'put', 'delete', 'trace']);

/**
 * A request is sent again after a 401 only when that cannot change its effect: an idempotent method and a
 * body that is fully in memory (a stream has been consumed by the first attempt).
 */
function replayable(config: InternalAxiosRequestConfig): boolean {
  if (!IDEMPOTENT.has((config.method ?? 'get').toLowerCase())) return false;
  const d = config.data;
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

const REDACTED = '[REDACTED]';

/**
 * Removes the bearer token from everything a caller may log: config headers, the raw request, and the
 * shared agents (their sockets hold the raw header blocks of other users' requests in flight).
 */
function redact(target: { config?: InternalAxiosRequestConfig; request?: unknown; response?: AxiosResponse }): void {
  const headers = target.config?.headers;
  if (headers && typeof headers.get === 'function' && headers.has('Authorization')) headers.set('Authorization', REDACTED);
  if (target.config) {
    delete (target.config as TaggedConfig)[kToken];
    target.config.httpAgent = undefined;
    target.config.httpsAgent = undefined;
  }
  // The ClientRequest keeps the raw header block (`_header`), token included.
  if ('request' in target) target.request = undefined;
  if (target.response) {
    target.response.request = undefined;
    target.response.config = target.config ?? target.response.config;
  }
}

/**
 * The per-request authorized client: an axios instance that sends the user's access token only to the
 * configured API origins, refuses every other destination before sending, follows no redirects, has a
 * deadline and a size cap, ignores proxy variables, and retries once after a 401 with a refreshed token.
 */
export function createOAuthClient(cfg: ResolvedConfig, agents: SharedAgents, source: AccessTokenSource): AxiosInstance {
  const instance = axios.create({
    baseURL: cfg.apiBaseUrl,
    timeout: cfg.httpTimeout,
    maxContentLength: cfg.maxResponseBytes,
    maxBodyLength: cfg.maxResponseBytes,
    maxRedirects: 0,
    proxy: false,
    httpAgent: agents.http,
    httpsAgent: agents.https,
  });

  instance.interceptors.request.use(async (config: TaggedConfig) => {
    let target: URL;
    try {
      target = new URL(axios.getUri({ baseURL: config.baseURL, url: config.url, allowAbsoluteUrls: config.allowAbsoluteUrls }));
    } catch {
      throw new OriginNotAllowedError('(an unparseable URL)');
    }
    if ((target.protocol !== 'https:' && target.protocol !== 'http:') || !cfg.apiOrigins.has(target.origin)) {
      throw new OriginNotAllowedError(target.protocol === 'http:' || target.protocol === 'https:' ? target.origin : target.protocol);
    }
    // Send exactly what was checked.
    config.baseURL = undefined;
    config.url = target.href;
    config.maxRedirects = 0;
    config.proxy = false;
    config.httpAgent = agents.http;
    config.httpsAgent = agents.https;
    config.timeout = Math.min(config.timeout || cfg.httpTimeout, cfg.httpTimeout);
    if (!(config.maxContentLength! > 0) || config.maxContentLength! > cfg.maxResponseBytes) config.maxContentLength = cfg.maxResponseBytes;
    if (!(kUserSignal in config)) config[kUserSignal] = (config.signal as AbortSignal | undefined) ?? null;
    const token = await source.accessToken();
    config[kToken] = token;
    // axios's timeout stops at the response headers; this deadline also covers a slow-drip body. It starts
    // once the token is in hand: waiting for a refresh has bounds of its own.
    const deadline = AbortSignal.timeout(cfg.httpTimeout);
    config[kDeadline] = deadline;
    const userSignal = config[kUserSignal];
    config.signal = userSignal ? AbortSignal.any([userSignal, deadline]) : deadline;
    config.headers = AxiosHeaders.from(config.headers);
    config.headers.set('Authorization', `Bearer ${token}`);
    return config;
  });

  instance.interceptors.response.use(
    (response) => {
      redact(response);
      const data = response.data as { prependListener?: (e: 'error', l: (err: unknown) => void) => unknown } | undefined;
      // A streamed body fails later (size cap, deadline) with an AxiosError of its own: redact that too.
      if (data && typeof data.prependListener === 'function') data.prependListener('error', (err) => err instanceof AxiosError && redact(err));
      return response;
    },
    async (error: unknown) => {
      if (!(error instanceof AxiosError)) throw error;
      const config = error.config as TaggedConfig | undefined;
      const used = config?.[kToken];
      const timedOut = config?.[kDeadline]?.aborted === true || error.code === 'ECONNABORTED' || error.code === 'ETIMEDOUT';
      redact(error);
      if (timedOut && !config?.[kUserSignal]?.aborted) throw new UpstreamTimeoutError(error);
      if (error.response?.status === 401 && config && used !== undefined && !config[kRetried]) {
        // Refresh unless another request already replaced the rejected token; replay once when that is safe.
        await source.accessToken({ rejected: used });
        if (replayable(config)) {
          config[kRetried] = true;
          return instance.request(config);
        }
      }
      throw error;
    },
  );

  return instance;
}
