import type { Request, Response } from 'express';
import type { Instance } from '../instance.js';
import { handleCallback } from './callback.js';
import { handleLogin } from './login.js';
import { handleLogout } from './logout.js';
import { handleBackchannelLogout } from './backchannel-logout.js';
import { ROUTES, ROUTE_NAMES, type RouteDescriptor, type RouteName } from './table.js';

export type RouteHandler = (instance: Instance, req: Request, res: Response) => Promise<void>;

/** The handler of each route of {@link ROUTES}: a route without one does not compile. */
const HANDLERS: { readonly [K in RouteName]: RouteHandler } = {
  login: handleLogin,
  callback: handleCallback,
  logout: handleLogout,
  backchannelLogout: handleBackchannelLogout,
};

/** A route as dispatched: its row of the table, its handler, its resolved path. */
export interface MountedRoute extends RouteDescriptor {
  name: RouteName;
  handler: RouteHandler;
}

/** The dispatch table of one instance: resolved path -> route. Built once, at startup. */
export function mountRoutes(
  paths: Readonly<Record<RouteName, string>>,
  enabled: (name: RouteName) => boolean = () => true,
): ReadonlyMap<string, MountedRoute> {
  const names = ROUTE_NAMES.filter((name) => !(ROUTES[name] as RouteDescriptor).optional || enabled(name));
  return new Map(names.map((name) => [paths[name], { name, ...ROUTES[name], handler: HANDLERS[name] }]));
}
