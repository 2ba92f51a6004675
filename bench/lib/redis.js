/** Redis helpers shared by the app processes and the orchestrator: a bounded connect and a prefix sweep. */
import { createClient } from 'redis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/** Connects within `timeoutMs` (node-redis' connect() never rejects while Redis is down), or throws. */
export async function connectRedis(url = REDIS_URL, timeoutMs = 5000) {
  const client = createClient({
    url,
    socket: { connectTimeout: 2000, reconnectStrategy: (retries) => (retries > 20 ? new Error('Redis unreachable') : Math.min(retries * 50, 500)) },
  });
  // Without a listener the first socket error would crash the process.
  client.on('error', () => {});
  try {
    await withTimeout(client.connect(), timeoutMs, `connecting to Redis at ${url}`);
  } catch (err) {
    client.destroy?.();
    throw err;
  }
  return client;
}

/** Deletes every key under `prefix` (SCAN + UNLINK, bounded). The prefix must hold no glob characters. */
export async function deleteByPrefix(client, prefix, maxIterations = 100_000) {
  if (!prefix || /[*?[\]\\]/.test(prefix)) throw new Error(`refusing to sweep prefix ${JSON.stringify(prefix)}`);
  let cursor = '0';
  let deleted = 0;
  for (let i = 0; i < maxIterations; i++) {
    const page = await withTimeout(client.scan(cursor, { MATCH: `${prefix}*`, COUNT: 1000 }), 5000, 'SCAN');
    if (page.keys.length) deleted += Number(await withTimeout(client.unlink(page.keys), 5000, 'UNLINK'));
    cursor = String(page.cursor);
    if (cursor === '0') break;
  }
  return deleted;
}

/** Counts keys under `prefix` (bounded), for the cleanup check. */
export async function countByPrefix(client, prefix, maxIterations = 100_000) {
  let cursor = '0';
  let count = 0;
  for (let i = 0; i < maxIterations; i++) {
    const page = await withTimeout(client.scan(cursor, { MATCH: `${prefix}*`, COUNT: 1000 }), 5000, 'SCAN');
    count += page.keys.length;
    cursor = String(page.cursor);
    if (cursor === '0') break;
  }
  return count;
}

/** Best effort, for a script's `finally`: connects, deletes every key under `prefix`, disconnects; never throws. */
export async function sweepPrefix(prefix) {
  const redis = await connectRedis().catch(() => undefined);
  if (!redis) return;
  await deleteByPrefix(redis, prefix).catch(() => {});
  await redis.quit().catch(() => {});
}
