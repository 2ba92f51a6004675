/**
 * Outbound HTTP to the provider, as openid-client's custom fetch: an overall deadline that covers the
 * body (a slow drip is cut off), a size cap, redirects never followed, no proxy from the environment
 * (Node's fetch ignores HTTP(S)_PROXY), and failures turned into typed, secret-free errors. What a
 * response means is not its business: the caller may rewrite form-POST answers through `onFormResponse`.
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

/** Rewrites the answer to a form POST (token, revocation) before it is parsed; may throw to refuse it. */
export type FormResponseHook = (status: number, headers: Headers, body: Buffer, form: URLSearchParams) => { status: number; body: Buffer };

/** Builds a fetch bounded by `timeoutMs` (headers and body together) and `maxBytes`. */
export function createBoundedFetch(timeoutMs: number, maxBytes: number, { onFormResponse }: { onFormResponse?: FormResponseHook } = {}) {
  return async function boundedFetch(url: string, options: FetchOptions): Promise<Response> {
    const controller = new AbortController();
    // Made only when the deadline passes (an Error captures a stack trace: not on every request).
    let timeout: FetchTimeoutError | undefined;
    const timer = setTimeout(() => controller.abort((timeout = new FetchTimeoutError())), timeoutMs);
    const onOuterAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    try {
      let res: Response;
      try {
        res = await fetch(url, { ...(options as RequestInit), redirect: 'manual', signal: controller.signal });
      } catch (err) {
        if (timeout && controller.signal.reason === timeout) throw timeout;
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
          if (timeout && controller.signal.reason === timeout) throw timeout;
          throw new FetchNetworkError(networkCode(err));
        }
      }
      if (NULL_BODY_STATUS.has(res.status)) return new Response(null, { status: res.status, statusText: res.statusText, headers: res.headers });
      let status = res.status;
      let body: Buffer = Buffer.concat(chunks);
      if (onFormResponse && options.method === 'POST' && options.body instanceof URLSearchParams) {
        ({ status, body } = onFormResponse(status, res.headers, body, options.body));
      }
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
