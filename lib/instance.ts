import type { Request } from 'express';
import { AuthorizationServer } from './authorization-server.js';
import { createAgents, type SharedAgents } from './client.js';
import type { ResolvedConfig } from './config.js';
import { OAuthEvents } from './events.js';
import { Refresher } from './refresh.js';
import { requireSession, type SessionRequest } from './session.js';
import { RecordCipher } from './token-record.js';
import { telemetryOf } from './telemetry.js';
import { TokenService } from './tokens.js';
import { errorMessage } from './util.js';

/** Everything one `oauth()` call builds at startup, shared by its handlers: wiring only. */
export class Instance {
  readonly server: AuthorizationServer;
  readonly tokens: TokenService;
  readonly refresher: Refresher;
  readonly events = new OAuthEvents();
  readonly agents: SharedAgents = createAgents();

  constructor(readonly cfg: ResolvedConfig) {
    this.server = new AuthorizationServer(cfg);
    // Records stay bound to the issuer exactly as configured, even when discovery normalises the issuer
    // compared with `iss`, so records written under that setting keep opening.
    const cipher = new RecordCipher(cfg.encryptionKeys, {
      issuer: this.server.recordIssuer,
      clientId: cfg.clientId,
      ...(cfg.named ? { instance: cfg.name } : {}),
    });
    this.tokens = new TokenService(cfg, cipher);
    this.refresher = new Refresher(cfg, this.tokens, this.server, this.events);
    const telemetry = telemetryOf(cfg);
    this.events.observer = (name, ...args) => {
      const e = args[0] as { durationMs?: number; reason?: string; revoked?: boolean };
      if (name === 'login') telemetry.login(e.durationMs ?? 0);
      else if (name === 'login_failed') telemetry.loginFailed(e.reason ?? 'unknown');
      else if (name === 'refresh') telemetry.refresh(e.durationMs ?? 0);
      else if (name === 'refresh_failed') telemetry.refreshFailed(e.reason ?? 'unknown', e.durationMs ?? 0);
      else if (name === 'logout') telemetry.logout(e.revoked === true);
    };
    this.events.onListenerError = (name, err) =>
      cfg.logger.error(`an '${name}' event listener threw; the flow went on`, { error: errorMessage(err) });
  }

  session(req: Request): SessionRequest {
    return requireSession(req);
  }

  /** Stops background work (discovery retries) and closes idle keep-alive sockets. */
  close(): void {
    this.server.stop();
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}
