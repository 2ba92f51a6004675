import http from 'node:http';
import https from 'node:https';
import axios, { AxiosError, AxiosHeaders, type AxiosInstance, type AxiosResponse, type InternalAxiosRequestConfig } from 'axios';
import type { ResolvedConfig } from './config.js';
import { OriginNotAllowedError } from './errors.js';

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
type TaggedConfig = InternalAxiosRequestConfig & { [kToken]?: string; [kRetried]?: boolean };

const IDEMPOTENT = new Set(['get', 'head', 'options', 'put', 'delete', 'trace']);

/** A request can be sent again after a 401 when its method is idempotent or its body is fully buffered. */
function replayable(config: InternalAxiosRequestConfig): boolean {
  if (IDEMPOTENT.has((config.method ?? 'get').toLowerCase())) return true;
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

/** Removes the bearer token from everything a caller may log: config headers and the raw request. */
function redact(target: { config?: InternalAxiosRequestConfig; request?: unknown; response?: AxiosResponse }): void {
  const headers = target.config?.headers;
  if (headers && typeof headers.get === 'function' && headers.has('Authorization')) headers.set('Authorization', REDACTED);
  if (target.config) delete (target.config as TaggedConfig)[kToken];
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
    const token = await source.accessToken();
    config[kToken] = token;
    config.headers = AxiosHeaders.from(config.headers);
    config.headers.set('Authorization', `Bearer ${token}`);
    return config;
  });

  instance.interceptors.response.use(
    (response) => {
      redact(response);
      return response;
    },
    async (error: unknown) => {
      if (!(error instanceof AxiosError)) throw error;
      const config = error.config as TaggedConfig | undefined;
      const used = config?.[kToken];
      if (error.response?.status === 401 && config && used !== undefined && !config[kRetried] && replayable(config)) {
        redact(error);
        // Force a refresh unless another request already replaced the rejected token; then replay once.
        await source.accessToken({ rejected: used });
        config[kRetried] = true;
        return instance.request(config);
      }
      redact(error);
      throw error;
    },
  );

  return instance;
}
