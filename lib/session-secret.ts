import { createOAuthError, type OAuthError } from './errors.js';
import type { Logger } from './types.js';

/** What express-session passes to `next()` on every request when it was mounted without `secret`. */
const EXPRESS_SESSION_NO_SECRET = 'secret option required for sessions';

const FIX =
  'express-session has no `secret`: pass session({ secret: process.env.SESSION_SECRET, ... }) with a long random value, e.g. `openssl rand -base64 32`.';

/** The logger of the last `oauth()` created: the request never reached it, so nothing else names one. */
let processLogger: Logger | undefined;
let reported = false;

/** Called by `oauth()`: the logger the missing-secret line goes to. */
export function noteProcessLogger(logger: Logger): void {
  processLogger = logger;
}

/**
 * express-session without `secret` fails every request before `oauth()` runs. Recognises exactly that error,
 * logs the fix once per process, and returns the 500 to render (its message names no value).
 */
export function missingSessionSecret(err: unknown, logger: Logger | undefined): OAuthError | undefined {
  if (!(err instanceof Error) || err.message !== EXPRESS_SESSION_NO_SECRET) return undefined;
  if (!reported) {
    reported = true;
    (logger ?? processLogger ?? { error: (m: string) => console.error(`express-oauth-client: ${m}`) }).error(FIX);
  }
  return createOAuthError('session_missing', FIX);
}
