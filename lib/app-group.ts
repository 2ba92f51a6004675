import type { Request } from 'express';
import { ConfigError } from './errors.js';
import type { Instance } from './instance.js';
import type { StateKey } from './request-state.js';

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
