import type { Request } from 'express';
import type { AxiosInstance } from 'axios';
import { createOAuthClient, type AccessCredentials } from './client.js';
import { dpopKey } from './dpop.js';
import { ConnectionRequiredError, LoginRequiredError, createOAuthError } from './errors.js';
import type { AppGroup } from './app-group.js';
import type { Instance } from './instance.js';
import { isLoggedIn, namespaceOf } from './session.js';
import { loginUrlOf } from './login-url.js';
import { insufficientScopeError } from './insufficient-scope.js';
import type { LoadedRecord } from './tokens.js';
import type { OAuthRequestContext, OAuthUser, TokenInfo } from './types.js';

/** What `oauth()` leaves on each request: one small object, the rest is built on first use. */
export interface RequestState {
  instance: Instance;
  /** Where `oauth()` is mounted (its `req.baseUrl`), to build login links. */
  base: string;
  /** The instances of the app mounted with this one (several providers). */
  group?: AppGroup;
  tokens?: RequestTokens;
  client?: AxiosInstance;
  context?: OAuthRequestContext;
}

/**
 * Module-private keys: another installed copy of the package neither reads nor overwrites this state.
 * Each `oauth()` instance keeps its state under its own key (see {@link createStateKey}); `kState` points
 * at the state of the app's login instance (`role: 'login'`, the last one the request passed), or, when
 * the request passed none, of the first instance it passed: `req.oauth`, `req.oauthClient`,
 * `requireAuth()` and the error handler use it. Connect instances are reached by name.
 */
const kState = Symbol('express-oauth-client.state');

/** A key for one instance's state on requests; made once per `oauth()` call. */
export type StateKey = symbol & { readonly __stateKey: unique symbol };

export function createStateKey(): StateKey {
  return Symbol('express-oauth-client.instance-state') as StateKey;
}

type StateSlots = Record<symbol, RequestState | undefined>;

/** Records that the request passed `instance` (mounted at `req.baseUrl`): one small object, nothing else. */
export function setState(req: Request, key: StateKey, instance: Instance, group?: AppGroup): void {
  const state: RequestState = { instance, base: req.baseUrl, group };
  const slots = req as unknown as StateSlots;
  slots[key] = state;
  if (instance.cfg.role === 'login' || slots[kState] === undefined) slots[kState] = state;
}

/** The state of the instance of `key`, or of the instance the request passed last. */
export function stateOf(req: Request, key?: StateKey): RequestState | undefined {
  return (req as unknown as StateSlots)[key ?? kState];
}

/** Per-request token access: reads the store at most once per request unless a refresh replaces the record. */
export class RequestTokens {
  private loaded: Promise<LoadedRecord | null> | undefined;

  constructor(
    private readonly instance: Instance,
    private readonly req: Request,
    private readonly sid: string,
    /** The instance's login route (mount path included), for `connection_required`. */
    private readonly loginUrl?: string,
  ) {}

  private endLogin(): void {
    const data = namespaceOf((this.req as Request & { session?: object }).session, this.instance.cfg.sessionKey);
    if (data) {
      delete data.user;
      delete data.loginAt;
      delete data.extraScopes;
    }
  }

  /** An API's `403 insufficient_scope` becomes an {@link InsufficientScopeError} naming the scope to request. */
  forbidden(wwwAuthenticate: unknown, cause: unknown): Error | undefined {
    return insufficientScopeError(this.instance, this.loginUrl ?? this.instance.cfg.paths.login, wwwAuthenticate, cause);
  }

  record(): Promise<LoadedRecord | null> {
    this.loaded ??= this.instance.tokens.readCached(this.sid);
    return this.loaded;
  }

  async accessToken(options: { rejected?: string } = {}): Promise<string> {
    return (await this.fresh(options)).record.access_token;
  }

  /** The access token and, when it is DPoP-bound, its key (imported when the record was opened). */
  async credentials(options: { rejected?: string } = {}): Promise<AccessCredentials> {
    const { record } = await this.fresh(options);
    const bound = record.token_type.toLowerCase() === 'dpop' && record.dpop !== undefined;
    return { token: record.access_token, dpop: bound ? await dpopKey(record.dpop!) : undefined };
  }

  private async fresh(options: { rejected?: string }): Promise<LoadedRecord> {
    try {
      const current = await this.record();
      if (!current) throw new LoginRequiredError();
      const fresh = await this.instance.refresher.ensureFresh(this.sid, current, options);
      if (fresh !== current) this.loaded = Promise.resolve(fresh);
      return fresh;
    } catch (err) {
      if (err instanceof LoginRequiredError) {
        this.loaded = Promise.resolve(null);
        this.endLogin();
        // A connection that is gone is not the end of the login: the app asks for that connection again.
        const { cfg } = this.instance;
        if (cfg.role === 'connect') throw new ConnectionRequiredError(cfg.name, this.loginUrl ?? cfg.paths.login, err.message);
      }
      throw err;
    }
  }
}

/** The request's token source for the instance of `state`: built on first use, shared by `req.oauthClient`, `req.oauth` and the proxy. */
export function tokensOf(req: Request, state: RequestState): RequestTokens {
  return (state.tokens ??= new RequestTokens(
    state.instance,
    req,
    state.instance.session(req).sessionID,
    `${state.group?.base ?? state.base}${state.instance.cfg.paths.login}`,
  ));
}

/** The request's client for the instance of `state` (`req.oauthClient`, `req.oauthClients.<name>`): built on first use. */
export function clientOf(req: Request, state: RequestState): AxiosInstance {
  return (state.client ??= createOAuthClient(state.instance.cfg, state.instance.agents, tokensOf(req, state)));
}

function requireState(req: Request, name: string): RequestState {
  const state = stateOf(req);
  if (!state) {
    throw createOAuthError('config_invalid', `req.${name} is not available: mount app.use(oauth({...})) before this route.`);
  }
  return state;
}

/**
 * `req.oauth`: one object per request that reads it, methods on the prototype (no closures). The request
 * and state are private fields: logging `req.oauth` shows the login state, never the session or its id.
 */
class RequestContext implements OAuthRequestContext {
  readonly isAuthenticated: boolean;
  readonly user: OAuthUser | undefined;
  readonly #req: Request;
  readonly #state: RequestState;

  constructor(req: Request, state: RequestState) {
    const data = namespaceOf(state.instance.session(req).session, state.instance.cfg.sessionKey);
    this.isAuthenticated = isLoggedIn(data);
    this.user = data?.user;
    this.#req = req;
    this.#state = state;
  }

  async tokenInfo(): Promise<TokenInfo | undefined> {
    const loaded = await tokensOf(this.#req, this.#state).record();
    if (!loaded) return undefined;
    const { expires_at, scope, refresh_token } = loaded.record;
    return { expiresAt: expires_at === undefined ? undefined : new Date(expires_at * 1000), scope, refreshable: !!refresh_token };
  }

  isConnected(provider: string): boolean {
    const instance = this.#named(provider, 'req.oauth.isConnected()');
    return isLoggedIn(namespaceOf(instance.session(this.#req).session, instance.cfg.sessionKey));
  }

  loginUrl(options: { provider?: string; scope?: string | string[]; returnTo?: string } = {}): string {
    const state = this.#state;
    const instance = options.provider === undefined ? state.instance : this.#named(options.provider, 'req.oauth.loginUrl()');
    return loginUrlOf(instance, state.group?.base ?? state.base, options);
  }

  #named(provider: string, who: string): Instance {
    const group = this.#state.group;
    if (!group) throw createOAuthError('config_invalid', `${who}: no oauth() instance named '${provider}' is mounted.`);
    return group.member(provider, who).instance;
  }
}

/** Request prototypes that already have the accessors (one per Express app; sub-apps inherit their parent's). */
const installed = new WeakSet<object>();

/**
 * Defines `req.oauthClient` and `req.oauth` once per Express app, as getters on the app's own request
 * prototype (`app.request`; sub-apps mounted under it inherit them), so a request pays for them only when
 * it uses them: no per-request property definitions or closures, and no change to other apps or servers
 * in the process. Each getter builds its value from the request's own state on first use; a request that
 * did not pass through `oauth()` gets an error that says so.
 */
export function installRequestAccessors(proto: object): void {
  if (installed.has(proto)) return;
  installed.add(proto);
  defineRequestAccessor(proto, 'oauthClient', function (this: Request): AxiosInstance {
    return clientOf(this, requireState(this, 'oauthClient'));
  });
  defineRequestAccessor(proto, 'oauth', function (this: Request): OAuthRequestContext {
    const state = requireState(this, 'oauth');
    return (state.context ??= new RequestContext(this, state));
  });
}

/**
 * A getter on a request prototype, computed on use; assigning the property on a request (an app or a test
 * replacing it) makes a plain own property of that request only.
 */
export function defineRequestAccessor(proto: object, name: string, get: (this: Request) => unknown): void {
  Object.defineProperty(proto, name, {
    configurable: true,
    enumerable: false,
    get,
    set(this: Request, value: unknown) {
      Object.defineProperty(this, name, { value, configurable: true, writable: true, enumerable: true });
    },
  });
}
