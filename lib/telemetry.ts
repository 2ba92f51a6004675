/**
 * OpenTelemetry metrics and traces, through `@opentelemetry/api` when the app has it installed (an optional
 * peer dependency) and a no-op otherwise. The API is loaded once, in the background, when `oauth()` starts;
 * instruments are created on first use from whatever meter provider the app has registered by then (and
 * again if it registers another one), so the order of setup does not matter.
 *
 * Attributes are fixed identifiers only (outcome, reason, operation, HTTP status class): never a token, a
 * session id or its hash, a user id, a URL or anything a provider or browser sent.
 */
import type * as OTel from '@opentelemetry/api';
import type { Attributes, Counter, Histogram, Meter, MeterProvider, Span, Tracer } from '@opentelemetry/api';

type Api = typeof OTel;

const SCOPE = 'express-oauth-client';

interface Instruments {
  provider: MeterProvider;
  logins: Counter;
  loginFailures: Counter;
  loginDuration: Histogram;
  refreshes: Counter;
  refreshDuration: Histogram;
  lockWait: Histogram;
  storeDuration: Histogram;
  storeErrors: Counter;
  apiCalls: Counter;
  logouts: Counter;
}

/** The package's telemetry hooks. Every method is cheap and never throws. */
export class Telemetry {
  private api: Api | undefined;
  private instruments: Instruments | undefined;
  private tracer: Tracer | undefined;
  /** Resolves once the optional API was looked for (tests wait on it). */
  readonly loaded: Promise<void>;

  constructor(
    /** The `oauth()` instance's name, an attribute of every measurement. */
    private readonly instance: string,
    load: () => Promise<Api> = () => import('@opentelemetry/api'),
  ) {
    this.loaded = load().then(
      (api) => {
        this.api = api;
      },
      () => {},
    );
  }

  private meter(): Instruments | undefined {
    const api = this.api;
    if (!api) return undefined;
    const provider = api.metrics.getMeterProvider();
    if (this.instruments?.provider === provider) return this.instruments;
    const m: Meter = provider.getMeter(SCOPE);
    this.instruments = {
      provider,
      logins: m.createCounter('oauth.logins', { description: 'Completed logins (code exchanged, tokens stored).' }),
      loginFailures: m.createCounter('oauth.login.failures', { description: 'Failed callbacks, by reason.' }),
      loginDuration: m.createHistogram('oauth.login.duration', { unit: 'ms', description: 'Callback handling time of completed logins.' }),
      refreshes: m.createCounter('oauth.refreshes', { description: 'Token refreshes, by outcome (and reason when failed).' }),
      refreshDuration: m.createHistogram('oauth.refresh.duration', { unit: 'ms', description: 'Time of a refresh at the provider.' }),
      lockWait: m.createHistogram('oauth.refresh.lock_wait', {
        unit: 'ms',
        description: 'Time a request waited for another process to finish a refresh.',
      }),
      storeDuration: m.createHistogram('oauth.store.duration', { unit: 'ms', description: 'Token store operations, by operation.' }),
      storeErrors: m.createCounter('oauth.store.errors', { description: 'Token store operations that failed or timed out.' }),
      apiCalls: m.createCounter('oauth.api.calls', { description: 'req.oauthClient and proxy calls, by status class.' }),
      logouts: m.createCounter('oauth.logouts', { description: 'Logouts, by whether the provider confirmed revocation.' }),
    };
    return this.instruments;
  }

  private attrs(extra: Attributes = {}): Attributes {
    return { 'oauth.instance': this.instance, ...extra };
  }

  private safely(fn: (i: Instruments) => void): void {
    try {
      const i = this.meter();
      if (i) fn(i);
    } catch {
      // Telemetry never breaks a login, a refresh or an API call.
    }
  }

  login(durationMs: number): void {
    this.safely((i) => {
      i.logins.add(1, this.attrs());
      i.loginDuration.record(durationMs, this.attrs());
    });
  }

  loginFailed(reason: string): void {
    this.safely((i) => i.loginFailures.add(1, this.attrs({ reason })));
  }

  refresh(durationMs: number): void {
    this.safely((i) => {
      i.refreshes.add(1, this.attrs({ outcome: 'success' }));
      i.refreshDuration.record(durationMs, this.attrs({ outcome: 'success' }));
    });
  }

  refreshFailed(reason: string, durationMs: number): void {
    this.safely((i) => {
      i.refreshes.add(1, this.attrs({ outcome: 'failure', reason }));
      i.refreshDuration.record(durationMs, this.attrs({ outcome: 'failure' }));
    });
  }

  lockWait(durationMs: number, outcome: 'adopted' | 'took_over' | 'gave_up'): void {
    this.safely((i) => i.lockWait.record(durationMs, this.attrs({ outcome })));
  }

  store(operation: string, durationMs: number, ok: boolean): void {
    this.safely((i) => {
      i.storeDuration.record(durationMs, this.attrs({ operation }));
      if (!ok) i.storeErrors.add(1, this.attrs({ operation }));
    });
  }

  /** One API call through `req.oauthClient` (`via: 'client'`) or the proxy; `status` 0 when none came back. */
  apiCall(via: 'client' | 'proxy', status: number): void {
    this.safely((i) => i.apiCalls.add(1, this.attrs({ via, status_class: status ? `${Math.floor(status / 100)}xx` : 'none' })));
  }

  logout(revoked: boolean): void {
    this.safely((i) => i.logouts.add(1, this.attrs({ revoked })));
  }

  /** Runs `work` inside a span named `oauth.<name>` (code exchange, refresh, revocation); the span records only the outcome. */
  async span<T>(name: string, work: () => Promise<T>): Promise<T> {
    const api = this.api;
    if (!api) return work();
    let span: Span;
    try {
      this.tracer ??= api.trace.getTracer(SCOPE);
      span = this.tracer.startSpan(`oauth.${name}`, { kind: api.SpanKind.CLIENT, attributes: this.attrs() });
    } catch {
      return work();
    }
    try {
      const result = await work();
      span.setStatus({ code: api.SpanStatusCode.OK });
      return result;
    } catch (err) {
      // The error's code only: messages can name hosts, and causes can hold provider bodies.
      const code = (err as { code?: unknown })?.code;
      span.setAttribute('error.type', typeof code === 'string' ? code : 'error');
      span.setStatus({ code: api.SpanStatusCode.ERROR });
      throw err;
    } finally {
      span.end();
    }
  }
}

const byConfig = new WeakMap<object, Telemetry>();

/** The telemetry of one `oauth()` instance (keyed by its resolved configuration), created on first use. */
export function telemetryOf(cfg: object): Telemetry {
  let t = byConfig.get(cfg);
  if (!t) {
    const name = (cfg as { name?: unknown }).name;
    byConfig.set(cfg, (t = new Telemetry(typeof name === 'string' ? name : 'default')));
  }
  return t;
}
