import type { Request } from 'express';
import type { Configuration } from 'openid-client';
import { AuthorizationServer } from './authorization-server.js';
import { createAgents, type SharedAgents } from './client.js';
import type { ResolvedConfig } from './config.js';
import { RecordCipher } from './token-record.js';
import { OAuthError, ProviderError, providerNotLoaded } from './errors.js';
import { OAuthEvents } from './events.js';
import { withTimeout } from './util.js';
import { requireSession, type SessionRequest } from './session.js';
import { TokenService } from './tokens.js';
import { Refresher } from './refresh.js';

/** Everything one `oauth()` call builds at startup, shared by its handlers. */
export class Instance {
  readonly server: AuthorizationServer;
  readonly cipher: RecordCipher;
  readonly tokens: TokenService;
  readonly refresher: Refresher;
  readonly events = new OAuthEvents();
  readonly agents: SharedAgents = createAgents();

  constructor(readonly cfg: ResolvedConfig) {
    this.server = new AuthorizationServer(cfg);
    // Records stay bound to the issuer exactly as configured (as in earlier versions), even when discovery
    // normalises the issuer compared with `iss`: records written before still open.
    this.cipher = new RecordCipher(cfg.encryptionKeys, { issuer: this.server.recordIssuer, clientId: cfg.clientId });
    this.tokens = new TokenService(cfg, this.cipher);
    this.refresher = new Refresher(cfg, this.tokens, this.server, this.events, (c, rt, at) => this.revokeQuietly(c, rt, at));
    this.events.onListenerError = (name, err) =>
      cfg.logger.error(`an '${name}' event listener threw; the flow went on`, { error: err instanceof Error ? err.message : String(err) });
  }

  session(req: Request): SessionRequest {
    return requireSession(req);
  }

  private logDiscovery = (err: Error, retryInMs: number | undefined) => {
    if (retryInMs === undefined) this.cfg.logger.error(err.message);
    else this.cfg.logger.warn(`provider discovery failed (${err.message}); retrying in ${retryInMs} ms`);
  };

  /** Starts discovery (one attempt, or the one under way); rejects with 503 while it has not succeeded. */
  loadProvider(): Promise<Configuration> {
    return this.server.load(this.logDiscovery);
  }

  /** Resolves once discovery has succeeded, however many retries that takes; rejects on a configuration error. */
  whenProviderLoaded(): Promise<Configuration> {
    return this.server.whenLoaded(this.logDiscovery);
  }

  /** The provider configuration for a request: 503 while discovery has not succeeded yet. */
  async providerConfig(): Promise<Configuration> {
    const loaded = this.server.loaded;
    if (loaded) return loaded;
    return withTimeout(this.loadProvider(), this.cfg.httpTimeout, providerNotLoaded).catch((err) => {
      if (err instanceof OAuthError && err.code !== 'config_invalid') throw err;
      // A configuration error stays in the logs; the browser gets a 503 that does not invite quick retries.
      throw new ProviderError('provider_unavailable', 'The identity provider is not configured correctly.', { retryAfter: 30 });
    });
  }

  /**
   * Revokes the refresh token, then the access token (RFC 7009), each within a short deadline.
   * Never throws: logout and failed logins complete whatever the provider does.
   */
  async revokeQuietly(config: Configuration, refreshToken: string | undefined, accessToken: string | undefined): Promise<boolean> {
    let ok = false;
    const deadline = Math.min(this.cfg.httpTimeout, 3000);
    for (const [token, hint] of [
      [refreshToken, 'refresh_token'],
      [accessToken, 'access_token'],
    ] as const) {
      if (!token) continue;
      try {
        ok = (await withTimeout(this.server.revoke(config, token, hint), deadline, () => new Error('revocation timed out'))) || ok;
      } catch (err) {
        this.cfg.logger.warn('token revocation failed; the local logout completes anyway', {
          hint,
          error: err instanceof OAuthError ? err.code : 'timeout',
        });
        ok = false;
        break;
      }
    }
    return ok;
  }
}
