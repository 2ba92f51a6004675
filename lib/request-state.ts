import type { Request } from 'express';
import type { AxiosInstance } from 'axios';
import { createOAuthClient, type AccessCredentials } from './client.js';
import { dpopKey } from './dpop.js';
import { ConnectionRequiredError, LoginRequiredError, createOAuthError } from './errors.js';
import type { AppGroup } from './app-group.js';
import type { Instance } from './instance.js';
import { isLoggedIn, namespaceOf, type OAuthSessionData } from './session.js';
import { loginUrlOf } from './login-url.js';
import { insufficientScopeError } from './insufficient-scope.js';
import { recordTokenForms } from './redaction.js';
import type { LoadedRecord } from './tokens.js';
import type { OAuthRequestContext, OAuthUser, TokenInfo } from './types.js';

/** What `oauth()` leaves on each request: one small object, the rest is built on first use. */
export interface RequestState {
  instance: Instance;
  /** Where `oauth()` is mounted (its `req.baseUrl`), to build login links. */
  base: string;
  /** The instances of the app mounted with this one (several providers). */
  group?: AppGroup;
  /** The instance's key (see {@link createStateKey}). */
  key: StateKey;
  /** The states of the other instances the request passed (several providers), newest of a key first. */
  next?: RequestState;
  tokens?: RequestTokens;
  client?: AxiosInstance;
}

/**
 * Each request's state, in a module-private map (another installed copy of the package neither reads nor
 * overwrites it, and nothing on the request object leads to it). It holds the state of the app's login
 * instance (`role: 'login'`, the last one the request passed), or, when the request passed none, of the
 * first instance it passed: `req.oauth`, `req.oauthClient`, `requireAuth()` and the error handler use it.
 * The states of the other instances the request passed hang off it (`next`), found by their instance's
 * key (connect instances are reached by name). A map rather than a property on the request: adding a
 * property to a request object grows its property store on every request (measured: about 1 KB allocated
 * and 5 µs of CPU per request on P1, docs/performance.md).
 */
const states = new WeakMap<Request, RequestState>();

/** A key for one instance's state on requests; made once per `oauth()` call. */
export type StateKey = symbol & { readonly __stateKey: unique symbol };

export function createStateKey(): StateKey {
  return Symbol('express-oauth-client.instance-state') as StateKey;
}

/** Records that the request passed `instance` (mounted at `req.baseUrl`): one small object, nothing else. */
export function setState(req: Request, key: StateKey, instance: Instance, group?: AppGroup): void {
  const head = states.get(req);
  const state: RequestState = { instance, base: req.baseUrl, group, key, next: undefined };
  if (head === undefined) states.set(req, state);
  else if (instance.cfg.role === 'login') {
    // The login instance is the head; a second pass of it replaces the first.
    state.next = head.key === key ? head.next : head;
    states.set(req, state);
  } else {
    // Right after the head, so a second pass of an instance is found before its first.
    state.next = head.next;
    head.next = state;
  }
}

/** The state of the instance of `key`, or of the app's login instance (else the first one the request passed). */
export function stateOf(req: Request, key?: StateKey): RequestState | undefined {
  const head = states.get(req);
  if (key === undefined || head === undefined) return head;
  // The newest pass of `key`: the chain first (a head that is not the login instance is the oldest pass).
  for (let state = head.next; state !== undefined; state = state.next) if (state.key === key) return state;
  return head.key === key ? head : undefined;
}

/** Per-request token access: reads the store at most once per request unless a refresh replaces the record. */
export class RequestTokens {
  private loaded: Promise<LoadedRecord | null> | undefined;

  constructor(
    private readonly instance: Instance,
    /**
     * The instance's data in the session when the request first used its tokens (for the session id
     * `sid`), not the request: this object lives as long as the request (cached on its state), and a
     * reference back to the request, or to its session (which points at the request), made every request
     * outlive a young-generation collection (measured: docs/performance.md). A weak reference does not help
     * (the young-generation collector keeps WeakRef targets alive).
     */
    private readonly data: OAuthSessionData | undefined,
    private readonly sid: string,
    /** The instance's login route (mount path included), for `connection_required`. */
    private readonly loginUrl?: string,
  ) {}

  private endLogin(): void {
    const data = this.data;
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
    return { token: record.access_token, dpop: bound ? await dpopKey(record.dpop!) : undefined, forms: recordTokenForms(record) };
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

/** Whether the session express-session loaded holds a completed login (or connection) of `instance`: no store read. */
export function sessionLoggedIn(req: Request, instance: Instance): boolean {
  return isLoggedIn(namespaceOf(instance.session(req).session, instance.cfg.sessionKey));
}

/** The request's token source for the instance of `state`: built on first use, shared by `req.oauthClient`, `req.oauth` and the proxy. */
export function tokensOf(req: Request, state: RequestState): RequestTokens {
  if (state.tokens) return state.tokens;
  const { session, sessionID } = state.instance.session(req);
  return (state.tokens = new RequestTokens(
    state.instance,
    namespaceOf(session, state.instance.cfg.sessionKey),
    sessionID,
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
 * `req.oauth`: a small object made on each read (so it also shows a logout earlier in the same request), methods on the prototype (no closures). The request
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
    return sessionLoggedIn(this.#req, instance);
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
    // A new small object per read, not one cached on the request's state: an object that lives as long as
    // the request and points back at it made every request outlive a young-generation collection (measured
    // with --trace-gc-nvp: +0.7 MB survivors per scavenge, about +15 µs per request on P1; docs/performance.md).
    return new RequestContext(this, state);
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
