/** Variant "this package, lazy touch": the pkg variant with `boundedSessionStore(store, { touchAfter: 60 })` (one Redis command less on most requests). */
import { build as buildPkg } from './pkg.js';

export function build(cfg) {
  return buildPkg({ ...cfg, touchAfter: 60 });
}
