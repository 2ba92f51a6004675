import type { Request } from 'express';
import type { AxiosInstance } from 'axios';
import { requireGroup } from './app-group.js';
import { createOAuthError } from './errors.js';
import { clientOf, defineRequestAccessor, stateOf } from './request-state.js';

/** Request prototypes that already have `req.oauthClients`. */
const installed = new WeakSet<object>();

/** The client of the app's instance named `name` for this request (`req.oauthClients.<name>`). */
export function namedClient(req: Request, name: string): AxiosInstance {
  const group = requireGroup(req, stateOf(req)?.group, `req.oauthClients.${name}`);
  const member = group.member(name, `req.oauthClients.${name}`);
  const state = stateOf(req, member.key);
  if (!state) {
    throw createOAuthError(
      'config_invalid',
      `req.oauthClients.${name}: this request did not pass the '${name}' oauth() instance (mount it before this route).`,
    );
  }
  return clientOf(req, state);
}

/**
 * Defines `req.oauthClients` once per Express app, as a getter on the app's request prototype (like
 * `req.oauthClient`): an object whose properties are the clients of the app's instances by name, each
 * built on first use. Reading an unknown name throws `config_invalid` (a typo fails loudly, not with
 * `undefined`).
 */
export function installProviderAccessors(proto: object): void {
  if (installed.has(proto)) return;
  installed.add(proto);
  defineRequestAccessor(proto, 'oauthClients', function (this: Request) {
    return clientsOf(this);
  });
}

/** `req.oauthClients`: a view whose properties are the clients by name (each built on first use). */
function clientsOf(req: Request): Readonly<Record<string, AxiosInstance>> {
  const names = () => [...requireGroup(req, stateOf(req)?.group, 'req.oauthClients').byName.keys()];
  // Read-only by its traps (a frozen target would forbid reporting the names as own properties).
  const target: Record<string, AxiosInstance> = {};
  return new Proxy(target, {
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
    get: (_target, prop) => (typeof prop === 'string' ? namedClient(req, prop) : undefined),
    has: (_target, prop) => typeof prop === 'string' && names().includes(prop),
    ownKeys: () => names(),
    getOwnPropertyDescriptor: (_target, prop) =>
      typeof prop === 'string' && names().includes(prop) ? { configurable: true, enumerable: true, get: () => namedClient(req, prop) } : undefined,
  });
}
