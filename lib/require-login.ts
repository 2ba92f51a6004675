import type { Request } from 'express';
import type { AppGroup } from './app-group.js';
import { ConfigError, LoginRequiredError } from './errors.js';
import type { Instance } from './instance.js';
import { isLoggedIn, namespaceOf } from './session.js';

/**
 * `requireLogin` of a connect instance: the app must consider the user logged in before an account is
 * connected to the session (checked when the connection starts and at its callback). Throws
 * {@link LoginRequiredError} when not; does nothing for instances without the option.
 */
export async function checkRequireLogin(instance: Instance, req: Request, group: AppGroup | undefined): Promise<void> {
  const rule = instance.cfg.requireLogin;
  if (rule === undefined) return;
  let ok: boolean;
  if (rule === 'login') {
    const login = group?.login?.instance;
    if (!login) {
      throw new ConfigError(
        `oauth(): '${instance.cfg.name}' has \`requireLogin: true\` but no \`role: 'login'\` instance is mounted with it: pass a function (req) => boolean instead.`,
      );
    }
    ok = isLoggedIn(namespaceOf(login.session(req).session, login.cfg.sessionKey));
  } else {
    ok = (await rule(req)) === true;
  }
  if (!ok) throw new LoginRequiredError(`Log in before connecting ${instance.cfg.name}.`);
}
