/**
 * The routes `oauth()` mounts, in one table: it drives the `paths` option type ({@link OAuthPaths}), the
 * checks of `paths` at startup, and the dispatch (with the handlers of `routes/index.ts`, which the
 * compiler keeps complete). Adding a route: a row here, its handler file, and its entry in `HANDLERS`.
 *
 * Data only (no imports), so the public option types can derive from it without an import cycle.
 */
export const ROUTES = {
  /** Starts a login. */
  login: { method: 'GET', defaultPath: '/oauth/login', logsOwnFailures: false },
  /** Receives the provider's redirect; its default path is the path of `redirectUri`. */
  callback: { method: 'GET', defaultPath: 'redirectUri', logsOwnFailures: true },
  /** Ends the login (POST, same-origin only). */
  logout: { method: 'POST', defaultPath: '/oauth/logout', logsOwnFailures: false },
  /** The public keys of `private_key_jwt`, for providers that fetch them (404 with other methods). */
  jwks: { method: 'GET', defaultPath: '/oauth/jwks', logsOwnFailures: false },
} as const satisfies Record<string, RouteDescriptor>;

/** One row of {@link ROUTES}. */
export interface RouteDescriptor {
  /** The only method accepted (others get 405 with `Allow`); GET routes do not answer HEAD. */
  method: 'GET' | 'POST';
  /** Default path, relative to the mount point; `'redirectUri'` means the path of the `redirectUri` option. */
  defaultPath: string;
  /** The handler logs each of its failures itself (one line with the reason); the dispatcher does not. */
  logsOwnFailures: boolean;
}

export type RouteName = keyof typeof ROUTES;

export const ROUTE_NAMES = Object.keys(ROUTES) as RouteName[];
