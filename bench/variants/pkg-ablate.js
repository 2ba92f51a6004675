/**
 * Variant "the package with parts of its login switched off", for `bench/login-ablation.js` only: it
 * measures what each piece of the login costs by removing it and nothing else, in one process (switched
 * between slices of logins, so the comparison does not depend on which process ran it). Never a way to
 * run the package: every switch here makes a login unsafe or incomplete.
 *
 * `POST /__ablate?off=a,b` (bench only) sets what is off, from:
 * - `claim`: the callback's single-use claim of the transaction answers "first use" without the store;
 * - `reload`: the session re-read after the code exchange (other tabs' logins) does nothing;
 * - `destroy`: the old session's destroy (fixation defence) answers at once without the store;
 * - `index`: the session index (back-channel logout, `auth.sessions`) is not written;
 * - `seal`: the token record is stored as plain JSON instead of encrypted (nothing reads it back here).
 */
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { TokenService } from '../../dist/tokens.js';
import { SessionIndex } from '../../dist/sessions/session-index.js';
import { SessionCipher } from '../../dist/crypto.js';
import { build as buildPkg } from './pkg.js';

export const SWITCHES = ['claim', 'reload', 'destroy', 'index', 'seal'];
const off = new Set();

/** Replaces `proto[name]` with `skipped` while `what` is off. */
function switchable(proto, name, what, skipped) {
  const original = proto[name];
  proto[name] = function (...args) {
    return off.has(what) ? skipped.apply(this, args) : original.apply(this, args);
  };
}

switchable(TokenService.prototype, 'claimOnce', 'claim', async () => true);
switchable(session.Session.prototype, 'reload', 'reload', function (callback) {
  process.nextTick(callback);
  return this;
});
switchable(RedisStore.prototype, 'destroy', 'destroy', (_sid, callback) => process.nextTick(() => callback?.()));
switchable(SessionIndex.prototype, 'add', 'index', async () => ({}));
switchable(SessionCipher.prototype, 'seal', 'seal', async (_sid, value) => JSON.stringify(value));

export async function build(cfg) {
  const built = await buildPkg(cfg);
  const app = built.app;
  // The switch (the request passes the session and the package's middleware, which leave it alone).
  app.post('/__ablate', (req, res) => {
    const wanted = String(req.query.off ?? '')
      .split(',')
      .filter(Boolean);
    const unknown = wanted.filter((w) => !SWITCHES.includes(w));
    if (unknown.length) return void res.status(400).json({ error: `unknown: ${unknown.join(', ')}` });
    off.clear();
    for (const w of wanted) off.add(w);
    res.json({ off: [...off] });
  });
  return built;
}
