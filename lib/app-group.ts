import type { Request } from 'express';
import { ConfigError } from './errors.js';
import type { Instance } from './instance.js';
import type { StateKey } from './request-state.js';
import type { LoginCheck } from './session-guard.js';

/** One `oauth()` instance as its app knows it: the instance and the key of its per-request state. */
export interface GroupMember {
  instance: Instance;
  key: StateKey;
}

/**
 * The `oauth()` instances mounted in one app at one mount path (SECURITY.md rule 15): names are unique,
 * at most one has `role: 'login'`, and no two mount the same path. Built as requests first pass each
 * instance; logout, the callback's session move, `req.oauthClients` and `requireConnection()` find the
 * other instances here.
 */
export class AppGroup {
  readonly byName = new Map<string, GroupMember>();
  login: GroupMember | undefined;
  private readonly routes = new Map<string, string>();

  constructor(readonly base: string) {}

  /** Adds an instance; a second instance of the same name, a second login instance or a shared path is a configuration error. */
  add(member: GroupMember): void {
    const { cfg } = member.instance;
    const existing = this.byName.get(cfg.name);
    if (existing?.instance === member.instance) return;
    const where = this.base ? ` mounted at ${this.base}` : '';
    if (existing) {
      throw new ConfigError(
        cfg.named
          ? `oauth(): two instances are named '${cfg.name}'${where}: give each provider its own \`name\`.`
          : `oauth(): two unnamed instances${where}: give each provider a \`name\` (and a \`role\`).`,
      );
    }
    if (cfg.role === 'login' && this.login) {
      throw new ConfigError(
        `oauth(): '${cfg.name}' and '${this.login.instance.cfg.name}' both have \`role: 'login'\`${where}: an app logs its users in one way; make the other \`role: 'connect'\`.`,
      );
    }
    const mine = Object.values(cfg.paths).map((p) => `${this.base}${p}`);
    for (const path of mine) {
      const owner = this.routes.get(path);
      if (owner !== undefined) {
        throw new ConfigError(
          `oauth(): '${cfg.name}' and '${owner}' both mount ${path}: give each instance its own \`paths\` (and its own \`redirectUri\` path).`,
        );
      }
    }
    for (const path of mine) this.routes.set(path, cfg.name);
    this.byName.set(cfg.name, member);
    if (cfg.role === 'login') this.login = member;
  }

  /** The member named `name`, or a configuration error that lists the names there are. */
  member(name: string, who: string): GroupMember {
    const member = this.byName.get(name);
    if (!member) {
      const known = [...this.byName.keys()].map((n) => `'${n}'`).join(', ') || 'none';
      throw new ConfigError(`${who}: no oauth() instance named '${name}' is mounted before this route (known: ${known}).`);
    }
    return member;
  }

  /** Every instance but `instance`. */
  others(instance: Instance): Instance[] {
    return [...this.byName.values()].map((m) => m.instance).filter((i) => i !== instance);
  }

  /** The connect instances, in mount order. */
  connections(): GroupMember[] {
    return [...this.byName.values()].filter((m) => m.instance.cfg.role === 'connect');
  }
}

/** Groups by app request prototype, then by mount path. */
const groups = new WeakMap<object, Map<string, AppGroup>>();

/** The group of the app whose request prototype is `proto`, at mount path `base`; made on first use. */
export function groupFor(proto: object, base: string): AppGroup {
  let byBase = groups.get(proto);
  if (!byBase) groups.set(proto, (byBase = new Map<string, AppGroup>()));
  let group = byBase.get(base);
  if (!group) byBase.set(base, (group = new AppGroup(base)));
  return group;
}

/** The group of the instances this request passed, or a configuration error naming `who`. */
export function requireGroup(req: Request, group: AppGroup | undefined, who: string): AppGroup {
  if (!group) throw new ConfigError(`${who}: the oauth() middleware is not mounted before this route (${req.method} ${req.path}).`);
  return group;
}

/** An `oauth()` middleware as the registry knows it: its member entry and its logout-guard check. */
export interface RegisteredMiddleware extends GroupMember {
  check: LoginCheck;
}

/** Every `oauth()` middleware function of the process, so siblings can be found in an app's router. */
const registry = new WeakMap<object, RegisteredMiddleware>();

/** Records an `oauth()` middleware (called once, by `oauth()`). */
export function registerMiddleware(fn: object, entry: RegisteredMiddleware): void {
  registry.set(fn, entry);
}

interface LayerLike {
  handle?: unknown;
  rawPath?: unknown;
  regexp?: unknown;
}

const innerStack = (handle: unknown): unknown => {
  const h = handle as { stack?: unknown; router?: { stack?: unknown }; _router?: { stack?: unknown } } | undefined;
  if (h?.stack) return h.stack;
  if (h?._router) return h._router.stack; // Express 4 (its `app.router` getter throws)
  try {
    return h?.router?.stack; // Express 5
  } catch {
    return undefined;
  }
};

function findLayer(stack: unknown, fn: object, depth: number): { stack: LayerLike[]; layer: LayerLike } | undefined {
  if (!Array.isArray(stack) || depth > 8) return undefined;
  for (const layer of stack as LayerLike[]) {
    if (layer?.handle === fn) return { stack: stack as LayerLike[], layer };
    const found = findLayer(innerStack(layer?.handle), fn, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** A layer's mount path (Express 5 keeps the raw path; Express 4 only the compiled pattern). */
const mountOf = (layer: LayerLike) => JSON.stringify(layer.rawPath !== undefined ? layer.rawPath : String(layer.regexp));

/**
 * The other `oauth()` middlewares mounted beside `fn` (the same router, the same mount path), found by
 * walking the app's router once. A group must know all its instances from the first request on: the
 * logout of the login instance ends every connection, and a callback moves every connection to the new
 * session id, even when the request never reaches the other instances' middleware.
 */
export function siblingsOf(app: unknown, fn: object): RegisteredMiddleware[] {
  const found = findLayer(innerStack(app), fn, 0);
  if (!found) return [];
  const mount = mountOf(found.layer);
  const out: RegisteredMiddleware[] = [];
  for (const layer of found.stack) {
    if (layer === found.layer || typeof layer?.handle !== 'function') continue;
    const entry = registry.get(layer.handle);
    if (entry && mountOf(layer) === mount) out.push(entry);
  }
  return out;
}
