import { safeOAuthErrorCode } from './errors.js';

/**
 * Outbound HTTP to the provider, as openid-client's custom fetch: an overall deadline that covers the
 * body (a slow drip is cut off), a size cap, redirects never followed, no proxy from the environment
 * (Node's fetch ignores HTTP(S)_PROXY), and failures turned into typed, secret-free errors.
 */

/** The provider did not answer within the deadline. */
export class FetchTimeoutError extends Error {
  constructor() {
    super('provider request timed out');
    this.name = 'FetchTimeoutError';
  }
}

/** The provider's answer was larger than allowed. */
export class FetchTooLargeError extends Error {
  constructor() {
    super('provider response too large');
    this.name = 'FetchTooLargeError';
  }
}

/** The token response breaks the strict parsing of rule 3 in a way openid-client would let through. */
export class FetchInvalidResponseError extends Error {
  constructor(what: string) {
    super(`invalid token response: ${what}`);
    this.name = 'FetchInvalidResponseError';
  }
}

/** The provider could not be reached (refused, reset, DNS). */
export class FetchNetworkError extends Error {
  constructor(readonly code: string | undefined) {
    super(`provider unreachable${code ? ` (${code})` : ''}`);
    this.name = 'FetchNetworkError';
  }
}

type FetchOptions = {
  body?: unknown;
  headers?: Record<string, string> | Headers;
  method?: string;
  redirect?: string;
  signal?: AbortSignal | null;
};

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/** Error codes some providers (GitHub) return with status 200, and the RFC 6749 code each one means. */
const ERRORS_WITH_200: Record<string, string> = {
  bad_verification_code: 'invalid_grant',
  bad_refresh_token: 'invalid_grant',
  incorrect_client_credentials: 'invalid_client',
  unsupported_grant_type: 'unsupported_grant_type',
};

/** The error body openid-client gets to see: the provider's code made safe, nothing else of its answer. */
const errorBody = (error: unknown) => Buffer.from(JSON.stringify({ error: safeOAuthErrorCode(error) }));

/**
 * Answers to token and revocation requests are normalized before openid-client parses them: an OAuth
 * error sent with status 200 (GitHub does) becomes the 400 it means; any error body is reduced to
 * `{"error": code}` with the code passed through {@link safeOAuthErrorCode} (a provider that echoes the
 * refresh token, the code or the client secret as its `error` leaks nothing into errors or logs); and an
 * `id_token` nobody asked for (no `openid` scope) is dropped instead of being validated against an issuer
 * that never promised one.
 */
function normalizeTokenResponse(
  status: number,
  headers: Headers,
  body: Buffer,
  keepIdToken: boolean,
  grant: boolean,
): { status: number; body: Buffer } {
  if (!(headers.get('content-type') ?? '').includes('json')) return { status, body };
  if (status !== 200 && status < 400) return { status, body };
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return { status, body };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { status, body };
  const o = json as Record<string, unknown>;
  if (status >= 400) return 'error' in o ? { status, body: errorBody(o.error) } : { status, body };
  if (!grant) return { status, body };
  if (o.error !== undefined && o.access_token === undefined) {
    const mapped = typeof o.error === 'string' && Object.hasOwn(ERRORS_WITH_200, o.error) ? ERRORS_WITH_200[o.error] : o.error;
    return { status: 400, body: errorBody(mapped) };
  }
  // oauth4webapi would parseFloat a string ("3600abc"); rule 3 wants a JSON number.
  if (o.expires_in !== undefined && typeof o.expires_in !== 'number') throw new FetchInvalidResponseError('expires_in is not a number');
  if (!keepIdToken && 'id_token' in o) {
    delete o.id_token;
    return { status, body: Buffer.from(JSON.stringify(o)) };
  }
  return { status, body };
}

/** A form POST to the provider (token, revocation): its answers may be error bodies shaped by RFC 6749 §5.2. */
const isFormPost = (options: FetchOptions) => options.method === 'POST' && options.body instanceof URLSearchParams;
const isTokenRequest = (options: FetchOptions) => isFormPost(options) && (options.body as URLSearchParams).has('grant_type');

/** Builds a fetch bounded by `timeoutMs` (headers and body together) and `maxBytes`. */
export function createBoundedFetch(timeoutMs: number, maxBytes: number, { keepIdToken = true } = {}) {
  return async function boundedFetch(url: string, options: FetchOptions): Promise<Response> {
    const controller = new AbortController();
    const timeout = new FetchTimeoutError();
    const timer = setTimeout(() => controller.abort(timeout), timeoutMs);
    const onOuterAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    try {
      let res: Response;
      try {
        res = await fetch(url, { ...(options as RequestInit), redirect: 'manual', signal: controller.signal });
      } catch (err) {
        if (controller.signal.aborted && controller.signal.reason === timeout) throw timeout;
        throw new FetchNetworkError(networkCode(err));
      }
      const declared = Number(res.headers.get('content-length'));
      if (Number.isFinite(declared) && declared > maxBytes) {
        controller.abort();
        throw new FetchTooLargeError();
      }
      const chunks: Uint8Array[] = [];
      let total = 0;
      if (res.body) {
        const reader = res.body.getReader();
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            total += value.byteLength;
            if (total > maxBytes) {
              controller.abort();
              throw new FetchTooLargeError();
            }
            chunks.push(value);
          }
        } catch (err) {
          if (err instanceof FetchTooLargeError) throw err;
          if (controller.signal.aborted && controller.signal.reason === timeout) throw timeout;
          throw new FetchNetworkError(networkCode(err));
        }
      }
      if (NULL_BODY_STATUS.has(res.status)) return new Response(null, { status: res.status, statusText: res.statusText, headers: res.headers });
      let status = res.status;
      let body: Buffer = Buffer.concat(chunks);
      if (isFormPost(options)) ({ status, body } = normalizeTokenResponse(status, res.headers, body, keepIdToken, isTokenRequest(options)));
      const headers = new Headers(res.headers);
      headers.delete('content-length');
      headers.delete('content-encoding');
      return new Response(new Uint8Array(body), { status, statusText: status === res.status ? res.statusText : '', headers });
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onOuterAbort);
    }
  };
}

function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
