import type { Request, Response } from 'express';
import type { Instance } from '../instance.js';
import { handleCallback } from './callback.js';
import { handleJwks } from './jwks.js';
import { handleLogin } from './login.js';
import { handleLogout } from './logout.js';
import { handleDisconnect } from './disconnect.js';
import { handleBackchannelLogout } from './backchannel-logout.js';
import { ROUTES, ROUTE_NAMES, type RouteDescriptor, type RouteName } from './table.js';

export type RouteHandler = (instance: Instance, req: Request, res: Response) => Promise<void>;

/** The handler of each route of {@link ROUTES}: a route without one does not compile. */
const HANDLERS: { readonly [K in RouteName]: RouteHandler } = {
  login: handleLogin,
  callback: handleCallback,
  logout: handleLogout,
  disconnect: handleDisconnect,
  backchannelLogout: handleBackchannelLogout,
  jwks: handleJwks,
};

/** A route as dispatched: its row of the table, its handler, its resolved path. */
export interface MountedRoute extends RouteDescriptor {
  name: RouteName;
  handler: RouteHandler;
}

/** The dispatch table of one instance: resolved path -> route, for the routes of its role. Built once, at startup. */
export function mountRoutes(paths: Readonly<Partial<Record<RouteName, string>>>): ReadonlyMap<string, MountedRoute> {
  const mounted = ROUTE_NAMES.filter((name) => paths[name] !== undefined);
  return new Map(mounted.map((name) => [paths[name]!, { name, ...ROUTES[name], handler: HANDLERS[name] }]));
}
