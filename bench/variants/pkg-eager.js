/**
 * Variant "this package, eager touch": the pkg variant with `boundedSessionStore(store, { touchAfter: 0 })`, so that
 * express-session's touch reaches Redis on every request as it does without the wrapper (the package's default is a
 * lazy touch: at most once per 60 s, or a tenth of the session's maxAge). Reported beside pkg.
 */
import { build as buildPkg } from './pkg.js';

export function build(cfg) {
  return buildPkg({ ...cfg, touchAfter: 0 });
}
