import { telemetryOf } from './telemetry.js';
import type { AuthorizationServer } from './authorization-server.js';
import type { TokenSet } from './token-response.js';
import type { ResolvedConfig } from './config.js';
import { randomToken } from './crypto.js';
import { LoginRequiredError, ProviderError, RefreshUnavailableError, providerNotLoaded } from './errors.js';
import type { OAuthEvents } from './events.js';
import { sessionTag, type LoadedRecord, type TokenService } from './tokens.js';
import { sleep } from './util.js';

/**
 * A waiter's first pause before it reads the record again; each next one is 1.5 times longer, up to
 * {@link FAST_PAUSE_MS} while a refresh takes as long as one usually does ({@link FAST_WAIT_MS}), then up to
 * {@link SLOW_PAUSE_MS} (a slow provider: fewer reads per waiting process and session).
 */
const FIRST_PAUSE_MS = 2;
const FAST_PAUSE_MS = 8;
const FAST_WAIT_MS = 250;
const SLOW_PAUSE_MS = 100;
/** How often a waiter tries the lock again (a holder that died leaves it until its lease ends). */
const LOCK_RETRY_MS = 100;

/** Options of one access-token request. */
export interface AccessTokenOptions {
  /** The API rejected this access token (401): refresh unless another writer already replaced it. */
  rejected?: string;
}

/**
 * Refresh, once per session at a time: a single flight per session in this process, a store lock
 * (`SET NX PX`, compare-and-delete) across processes, compare-and-set writes, rotation, race recovery.
 */
export class Refresher {
  private readonly inflight = new Map<string, Promise<LoadedRecord>>();
  private readonly lease: number;
  private readonly waitLimit: number;

  constructor(
    private readonly cfg: ResolvedConfig,
    private readonly tokens: TokenService,
    private readonly server: AuthorizationServer,
    private readonly events: OAuthEvents,
  ) {
    // The longest a live holder can take: re-read, token request, JWKS fetch (new signing key), write.
    const worstCase = 2 * cfg.httpTimeout + 3 * cfg.storeTimeout;
    // The lock outlives that, so a live holder never loses it mid-refresh.
    this.lease = worstCase + 2000;
    // Waiters give up once a live holder would have finished; a dead holder means 503 until the lease ends.
    this.waitLimit = worstCase + 500;
  }

  private usable(loaded: LoadedRecord, rejected: string | undefined): boolean {
    return !this.tokens.isExpiring(loaded.record) && loaded.record.access_token !== rejected;
  }

  /**
   * Returns a record with an access token worth sending, refreshing when it is expiring or was rejected.
   * `loaded` is what the caller already read in this request.
   */
  async ensureFresh(sid: string, loaded: LoadedRecord, options: AccessTokenOptions = {}): Promise<LoadedRecord> {
    const { record } = loaded;
    const rejected = options.rejected;
    if (rejected === undefined ? !this.tokens.isExpiring(record) : record.access_token !== rejected) return loaded;
    if (!record.refresh_token) {
      // Nothing to refresh with: use it while it lasts; once expired or rejected, the login is over.
      if (rejected === undefined && !this.tokens.isExpired(record)) return loaded;
      await this.tokens.discard(sid, loaded.raw);
      throw new LoginRequiredError(
        rejected === undefined ? 'The access token expired and cannot be refreshed.' : 'The API rejected the access token.',
      );
    }
    if (!this.server.isLoaded) {
      if (!this.tokens.isExpired(record) && rejected === undefined) return loaded;
      throw providerNotLoaded();
    }
    const key = `${sid}\u0000${rejected ?? ''}`;
    let flight = this.inflight.get(key);
    if (!flight) {
      flight = this.refreshLocked(sid, loaded, rejected)
        .then(
          (fresh) => {
            this.tokens.remember(sid, fresh);
            return fresh;
          },
          (err: unknown) => {
            if (err instanceof LoginRequiredError) this.tokens.forget(sid);
            throw err;
          },
        )
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, flight);
    }
    return flight;
  }

  /** Takes the cross-process lock, or waits for its holder's result. */
  private async refreshLocked(sid: string, seen: LoadedRecord, rejected: string | undefined): Promise<LoadedRecord> {
    const owner = randomToken(16);
    const giveUpAt = Date.now() + this.waitLimit;
    const telemetry = telemetryOf(this.cfg);
    let waitingSince: number | undefined;
    let pause = FIRST_PAUSE_MS;
    for (;;) {
      // The lock and, once taken, the record as it is then (re-read under the lock: rule 8), in one round trip
      // with RedisTokenStore.
      const taken = await this.tokens.lockAndGet(sid, owner, this.lease);
      if (taken.locked) {
        if (waitingSince !== undefined) telemetry.lockWait(Date.now() - waitingSince, 'took_over');
        try {
          const current = await this.tokens.open(sid, taken.raw);
          if (!current) throw new LoginRequiredError('The login ended in another request.');
          if (current.raw !== seen.raw && this.usable(current, rejected)) return current;
          return await this.refreshNow(sid, current);
        } finally {
          // Not awaited: the result is written (or the attempt over), and the callers need not wait one more
          // round trip for the release (a lock attempt that still finds it held waits a few ms and reads).
          void this.tokens.unlock(sid, owner).catch(() => {});
        }
      }
      waitingSince ??= Date.now();
      // Another process holds the lock: read until its result is there, and try the lock again only now and
      // then (a live holder keeps it; a dead one's lease ends after seconds). Only one request per process
      // and session waits (the single flight), so short pauses are cheap (one store read each), and the
      // waiters pick up the holder's result within a pause and a read of it being written: in a refresh
      // storm the waiting processes' calls are the slowest (issue 14 P3).
      const tryLockAt = Date.now() + LOCK_RETRY_MS;
      do {
        // Never past the next lock attempt or the give-up time.
        await sleep(Math.max(0, Math.min(pause, tryLockAt - Date.now(), giveUpAt - Date.now())));
        pause = Math.min(Date.now() - waitingSince < FAST_WAIT_MS ? FAST_PAUSE_MS : SLOW_PAUSE_MS, pause * 1.5);
        const current = await this.tokens.read(sid);
        if (!current) throw new LoginRequiredError('The login ended in another request.');
        if (current.raw !== seen.raw && this.usable(current, rejected)) {
          telemetry.lockWait(Date.now() - waitingSince, 'adopted');
          return current;
        }
        if (Date.now() >= giveUpAt) {
          telemetry.lockWait(Date.now() - waitingSince, 'gave_up');
          if (rejected === undefined && !this.tokens.isExpired(current.record)) return current;
          throw new RefreshUnavailableError('Another refresh of this session did not finish in time.');
        }
      } while (Date.now() < tryLockAt);
    }
  }

  /** The refresh itself, under the lock, on the record just re-read. */
  private async refreshNow(sid: string, current: LoadedRecord): Promise<LoadedRecord> {
    const started = Date.now();
    const session = sessionTag(sid);
    const sub = current.record.sub;
    let tokens: TokenSet;
    try {
      tokens = await this.server.refresh(current.record.refresh_token!, current.record.dpop);
    } catch (err) {
      const perr = err instanceof ProviderError ? err : new ProviderError('token_endpoint_error', 'Refresh failed.');
      const reason = perr.oauthError ?? (perr.code === 'token_endpoint_timeout' ? 'timeout' : perr.transient ? 'unavailable' : perr.code);
      this.events.emit('refresh_failed', { provider: this.cfg.name, session, sub, reason, durationMs: Date.now() - started });
      if (perr.oauthError === 'invalid_grant') {
        // Another process may have rotated the refresh token a moment ago (its lease ran out): adopt its result.
        const again = await this.tokens.read(sid);
        if (again && again.raw !== current.raw && !this.tokens.isExpired(again.record)) return again;
        await this.tokens.discard(sid, current.raw);
        throw new LoginRequiredError('The refresh token is no longer valid.');
      }
      this.cfg.logger.warn('token refresh failed; keeping the current tokens', { session, reason });
      if (!this.tokens.isExpired(current.record)) return current;
      if (perr.transient) throw new RefreshUnavailableError('The identity provider is unavailable; try again shortly.', perr);
      throw perr;
    }
    if (tokens.sub !== undefined && sub !== undefined && tokens.sub !== sub) {
      this.events.emit('refresh_failed', { provider: this.cfg.name, session, sub, reason: 'sub_changed', durationMs: Date.now() - started });
      this.cfg.logger.error('refresh returned an ID token for another subject; ending the login', { session });
      await this.tokens.discard(sid, current.raw);
      throw new LoginRequiredError('The identity provider returned another user.');
    }
    const next = this.tokens.buildRecord(tokens, current.record);
    const written = await this.tokens.replace(sid, current.raw, next);
    if (!written) {
      const again = await this.tokens.read(sid);
      if (!again) {
        // The user logged out while this refresh was in flight: the new tokens are nobody's, and a logout
        // is final. Revoke them (a new refresh token would otherwise stay live at the provider) and
        // answer as logged out.
        this.events.emit('refresh_failed', { provider: this.cfg.name, session, sub, reason: 'logged_out', durationMs: Date.now() - started });
        void this.server.revokeQuietly(tokens.refresh_token, tokens.access_token);
        throw new LoginRequiredError('The login ended while the tokens were being refreshed.');
      }
      // Someone wrote after we read (only possible if our lease ran out): theirs is newer, keep it.
      if (!this.tokens.isExpired(again.record)) return again;
      throw new RefreshUnavailableError('The token record changed during refresh.');
    }
    this.events.emit('refresh', { provider: this.cfg.name, session, sub, durationMs: Date.now() - started, version: next.version });
    return written;
  }
}
