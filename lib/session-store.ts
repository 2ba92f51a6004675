import type { Store } from 'express-session';
import { StoreUnavailableError } from './errors.js';

/** Options of {@link boundedSessionStore}. */
export interface BoundedSessionStoreOptions {
  /** Longest wait for any store operation, in ms. Default 2000. */
  timeout?: number;
  /**
   * Lazy touch, in seconds. express-session touches the session in the store on every request that does
   * not change it (connect-redis: an `EXPIRE`); with a lazy touch, this process passes a session's touch on
   * at most once per window (a write counts as one), which takes one store command off most requests. The
   * price: a session's expiry in the store moves in steps, so it can end up to one window before `maxAge`
   * (or the store's TTL) after its last request: earlier, never later. What connect-mongo calls
   * `touchAfter`.
   *
   * Default: a tenth of the session's `cookie.maxAge`, at most 60 s (when the cookie has no `maxAge`, a
   * tenth of the store's numeric `ttl` in seconds, as connect-redis has it, at most 60 s). A number sets
   * the window (capped in the same way at a tenth of the session's lifetime); `0` passes every touch on,
   * as express-session alone does.
   */
  touchAfter?: number;
}

/** The default window of the lazy touch, and its share of a session's `maxAge`. */
const DEFAULT_TOUCH_AFTER_MS = 60_000;
const TOUCH_SHARE_OF_MAX_AGE = 0.1;

/** Sessions whose touch this process passed on recently are remembered up to this many (then forgotten at once). */
const MAX_TOUCHED = 100_000;

const BOUNDED = ['get', 'set', 'destroy', 'touch'] as const;

/**
 * Wraps an express-session store (connect-redis, say) so that no session read or write waits longer
 * than `timeout`: a Redis that is down or paused then gives a 503 (`store_unavailable`, with
 * `Retry-After`) instead of a request that hangs. It also keeps express-session from silently treating
 * requests as anonymous while the store reports itself disconnected (which would start logins that
 * cannot be saved): such requests fail with the same 503.
 *
 * Render the error with {@link oauthErrorHandler} (mounted after your routes).
 *
 * @example
 * ```ts
 * app.use(session({ store: boundedSessionStore(new RedisStore({ client: redis })), secret, resave: false, saveUninitialized: false }));
 * ```
 */
export function boundedSessionStore<S extends Store>(store: S, options: BoundedSessionStoreOptions = {}): S {
  const timeout = options.timeout ?? 2000;
  if (!(typeof timeout === 'number' && timeout > 0)) throw new TypeError('boundedSessionStore: `timeout` must be a positive number of ms.');
  const touchAfter = options.touchAfter;
  if (touchAfter !== undefined && !(typeof touchAfter === 'number' && touchAfter >= 0 && Number.isFinite(touchAfter)))
    throw new TypeError('boundedSessionStore: `touchAfter` must be a number of seconds, 0 or more.');
  const touchAfterMs = touchAfter === undefined ? DEFAULT_TOUCH_AFTER_MS : touchAfter * 1000;
  // A session without a cookie maxAge lives for the store's TTL: connect-redis (and others) keep it, in seconds, in `ttl`.
  const storeTtl = (store as { ttl?: unknown }).ttl;
  const noMaxAgeWindowMs =
    typeof storeTtl === 'number' && storeTtl > 0 ? Math.min(touchAfterMs, storeTtl * 1000 * TOUCH_SHARE_OF_MAX_AGE) : touchAfterMs;
  /** The window for one session: `touchAfterMs`, at most a tenth of its lifetime (a short session is touched more often). */
  const windowOf = (sess: unknown): number => {
    const maxAge = (sess as { cookie?: { originalMaxAge?: unknown } } | undefined)?.cookie?.originalMaxAge;
    return typeof maxAge === 'number' && maxAge > 0 ? Math.min(touchAfterMs, maxAge * TOUCH_SHARE_OF_MAX_AGE) : noMaxAgeWindowMs;
  };
  /** Session id -> when this process last passed on a touch or a write of it (only with a lazy touch). */
  const touched = new Map<string, number>();
  const noteTouched = (sid: unknown) => {
    if (touchAfterMs === 0 || typeof sid !== 'string') return;
    if (touched.size >= MAX_TOUCHED) touched.clear();
    touched.set(sid, Date.now());
  };
  // Keyed by the store's own function, so a method replaced later (the logout guard wraps `set`) is seen.
  const wrapped = new WeakMap<object, unknown>();
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'on' || prop === 'addListener' || prop === 'once') {
        // express-session stops loading sessions on 'disconnect'; we prefer explicit 503s.
        return (event: string | symbol, listener: (...args: unknown[]) => void): unknown => {
          if (event === 'disconnect') return receiver;
          (target[prop] as (e: string | symbol, l: (...args: unknown[]) => void) => unknown).call(target, event, listener);
          return receiver;
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      if (!(BOUNDED as readonly PropertyKey[]).includes(prop) || typeof value !== 'function') return value;
      let fn = wrapped.get(value);
      if (!fn) {
        fn = function boundedStoreCall(this: unknown, ...args: unknown[]) {
          const last = args.length - 1;
          const callback = typeof args[last] === 'function' ? (args[last] as (err?: unknown, value?: unknown) => void) : undefined;
          if (touchAfterMs > 0) {
            const sid = args[0];
            if (prop === 'touch' && typeof sid === 'string') {
              const at = touched.get(sid);
              // Answered on the next tick, as a store would: nothing is sent.
              if (at !== undefined && Date.now() - at < windowOf(args[1])) return void (callback && process.nextTick(callback));
            } else if (prop === 'destroy') touched.delete(sid as string);
          }
          let settled = false;
          const timer = setTimeout(() => {
            if (settled) return;
            settled = true;
            callback?.(new StoreUnavailableError(`Session store ${String(prop)} timed out.`));
          }, timeout);
          const done = (err?: unknown, result?: unknown) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            if (!err && (prop === 'touch' || prop === 'set')) noteTouched(args[0]);
            if (err && !(err as { code?: string }).code?.startsWith?.('ENOENT'))
              callback?.(new StoreUnavailableError(`Session store ${String(prop)} failed.`, err));
            else callback?.(err, result);
          };
          if (callback) args[last] = done;
          else args.push(done);
          try {
            (value as (...a: unknown[]) => unknown).apply(this === receiver ? target : this, args);
          } catch (err) {
            done(err);
          }
        };
        wrapped.set(value, fn);
      }
      return fn;
    },
  });
}
