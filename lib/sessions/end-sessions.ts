import type { Store } from 'express-session';
import { StoreUnavailableError } from '../errors.js';
import type { Instance } from '../instance.js';
import { sessionTag } from '../tokens.js';
import { withTimeout } from '../util.js';
import type { IndexEntry } from './session-index.js';

export type EndReason = 'backchannel' | 'revoked' | 'absolute_lifetime' | 'idle_timeout';

/** Destroys a session in the app's session store, bounded by `storeTimeout`. */
export function destroyStored(store: Store, sessionId: string, timeoutMs: number): Promise<void> {
  const work = new Promise<void>((resolve, reject) =>
    store.destroy(sessionId, (err?: unknown) => (err ? reject(new StoreUnavailableError('Session destroy failed.', err)) : resolve())),
  );
  return withTimeout(work, timeoutMs, () => new StoreUnavailableError('Session destroy timed out.'));
}

/**
 * Ends logins from outside their browser (back-channel logout, `auth.sessions`): for each session, its
 * token record is read (to revoke its tokens) and deleted first, then the session is destroyed in the
 * app's session store, then it leaves the index. Deleting the record first keeps logout final: a request
 * of that browser that writes its session meanwhile is destroyed again by the session guard.
 * Returns how many sessions were ended. A store failure rejects (503) after ending what it could.
 */
export async function endSessions(
  instance: Instance,
  sessions: ReadonlyMap<string, IndexEntry>,
  reason: EndReason,
  { revoke }: { revoke: boolean },
): Promise<number> {
  const { tokens, server, events, cfg } = instance;
  const store = instance.sessions.store;
  let failure: unknown;
  let ended = 0;
  const revocations: Array<Promise<boolean>> = [];
  await Promise.all(
    [...sessions].map(async ([sessionId, entry]) => {
      try {
        const loaded = revoke ? await tokens.read(sessionId) : null;
        await tokens.remove(sessionId);
        // A login instance ends the whole session (as its logout does); a connect instance only its connection (the record).
        if (store && cfg.role === 'login') await destroyStored(store, sessionId, cfg.storeTimeout);
        await instance.sessions.index.remove(sessionId, entry);
        if (loaded) revocations.push(server.revokeQuietly(loaded.record.refresh_token, loaded.record.access_token));
        ended++;
        events.emit('session_ended', { provider: cfg.name, session: sessionTag(sessionId), sub: loaded?.record.sub, reason });
      } catch (err) {
        failure ??= err;
      }
    }),
  );
  await Promise.all(revocations);
  if (failure) throw failure instanceof StoreUnavailableError ? failure : new StoreUnavailableError('Could not end the sessions.', failure);
  return ended;
}
