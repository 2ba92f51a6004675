/** Constants shared by the orchestrator (run.js) and the profiler (profile.js). Test values, loopback only. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REDIS_URL } from './redis.js';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const processFile = (name) => path.join(BENCH_DIR, 'processes', name);

export const CLIENT = { clientId: 'bench-client', clientSecret: 'bench-client-secret-0123456789' };
export const API_RESOURCE = 'urn:bench:api';
export const SESSION_SECRET = 'bench-session-secret-0123456789abcdef';
export const ENCRYPTION_KEY = 'g/LFcPpK/5wGx0RpTuDmRv4MUUPm44gZDUAvzYIrAoM=';
export const SCOPE = ['openid', 'email', 'profile', 'offline_access', 'api:read'];

/** Configuration of one app process (see processes/app.js). */
export function appConfig(kind, { issuer, apiUrl }, prefix) {
  return {
    variant: kind,
    issuer,
    apiUrl,
    redisUrl: REDIS_URL,
    prefix,
    ...CLIENT,
    sessionSecret: SESSION_SECRET,
    encryptionKey: ENCRYPTION_KEY,
    scope: SCOPE,
  };
}
