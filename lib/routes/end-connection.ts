import type { Instance } from '../instance.js';
import { sessionTag } from '../tokens.js';

/**
 * Ends one instance's tokens for a session: revokes them at its provider (best effort, short deadline),
 * deletes its record, emits `disconnect`. The session data is the caller's to change. Returns whether the
 * provider confirmed revocation.
 */
export async function endConnection(instance: Instance, sid: string, sub: string | undefined): Promise<boolean> {
  const { server, tokens, events, cfg } = instance;
  const loaded = await tokens.read(sid);
  const revoked = loaded ? await server.revokeQuietly(loaded.record.refresh_token, loaded.record.access_token) : false;
  await tokens.remove(sid);
  if (loaded) events.emit('disconnect', { provider: cfg.name, session: sessionTag(sid), sub: sub ?? loaded.record.sub, revoked });
  return revoked;
}
