/**
 * The routes `oauth()` mounts, in one table: it drives the `paths` option type ({@link OAuthPaths}), the
 * checks of `paths` at startup, and the dispatch (with the handlers of `routes/index.ts`, which the
 * compiler keeps complete). Adding a route: a row here, its handler file, and its entry in `HANDLERS`.
 *
 * Data only (no imports), so the public option types can derive from it without an import cycle.
 */
export const ROUTES = {
  /** Starts a login. */
  login: { method: 'GET', defaultPath: '/oauth/login', logsOwnFailures: false, roles: ['login', 'connect'] },
  /** Receives the provider's redirect; its default path is the path of `redirectUri`. */
  callback: { method: 'GET', defaultPath: 'redirectUri', logsOwnFailures: true, roles: ['login', 'connect'] },
  /** Ends the login (POST, same-origin only), and every connection of the session. Login instances only. */
  logout: { method: 'POST', defaultPath: '/oauth/logout', logsOwnFailures: false, roles: ['login'] },
  /** Ends one connection (POST, same-origin only), keeping the login and the other connections. Connect instances only. */
  disconnect: { method: 'POST', defaultPath: '/oauth/disconnect', logsOwnFailures: false, roles: ['connect'] },
  /**
   * Receives the provider's logout token (Back-Channel Logout 1.0, server to server). Mounted only with the
   * `backchannelLogout` option; the handler answers other methods itself (400, as §2.8 asks for any failure).
   */
  backchannelLogout: {
    method: 'POST',
    defaultPath: '/oauth/backchannel-logout',
    logsOwnFailures: true,
    anyMethod: true,
    roles: ['login', 'connect'],
  },
  /** The public keys of `private_key_jwt`, for providers that fetch them (404 with other methods). */
  jwks: { method: 'GET', defaultPath: '/oauth/jwks', logsOwnFailures: false, roles: ['login', 'connect'] },
} as const satisfies Record<string, RouteDescriptor>;

/** One row of {@link ROUTES}. */
export interface RouteDescriptor {
  /** The only method accepted (others get 405 with `Allow`); GET routes do not answer HEAD. */
  method: 'GET' | 'POST';
  /** Default path, relative to the mount point; `'redirectUri'` means the path of the `redirectUri` option. */
  defaultPath: string;
  /** The handler logs each of its failures itself (one line with the reason); the dispatcher does not. */
  logsOwnFailures: boolean;
  /** The roles of instance that mount it (`role` option). */
  roles: readonly InstanceRole[];
  /** The handler answers every method itself (the dispatcher's 405 does not apply). */
  anyMethod?: boolean;
}

/** What an `oauth()` instance is for: establishing who the user is, or linking an API account to the session. */
export type InstanceRole = 'login' | 'connect';

export type RouteName = keyof typeof ROUTES;

export const ROUTE_NAMES = Object.keys(ROUTES) as RouteName[];
