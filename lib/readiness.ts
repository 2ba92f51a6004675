import type { RequestHandler } from 'express';
import type { AuthorizationServer } from './authorization-server.js';
import type { Logger } from './types.js';
import type { TokenService } from './tokens.js';
import { sleep } from './util.js';

/** The readiness helpers attached to the middleware (`ready`, `isReady`, `readinessHandler`). */
export interface Readiness {
  ready(): Promise<void>;
  isReady(): Promise<boolean>;
  readinessHandler(): RequestHandler;
}

/**
 * Readiness of one `oauth()` instance: the provider's metadata is loaded (discovery) and the token store
 * answers. Built once; owns nothing but the questions it asks the two parts that know.
 */
export function createReadiness(server: AuthorizationServer, tokens: TokenService, logger: Logger): Readiness {
  const readiness: Readiness = {
    async ready() {
      await server.whenLoaded();
      // Wait for the token store too (Redis may still be starting), retrying with a bounded backoff.
      for (let delay = 100; ; delay = Math.min(delay * 2, 5000)) {
        try {
          return await tokens.ping();
        } catch {
          logger.warn(`token store not answering; retrying in ${delay} ms`);
          await sleep(delay);
        }
      }
    },
    async isReady() {
      if (!server.isLoaded) {
        await server.load().catch(() => {});
        if (!server.isLoaded) return false;
      }
      return tokens.ping().then(
        () => true,
        () => false,
      );
    },
    readinessHandler() {
      return function oauthReadiness(_req, res) {
        void readiness.isReady().then((ok) => {
          res.setHeader('Cache-Control', 'no-store');
          if (!ok) res.setHeader('Retry-After', '5');
          res.status(ok ? 200 : 503).json({ ready: ok });
        });
      };
    },
  };
  return readiness;
}
