/** Variant "this package with DPoP" (P2 only): the pkg variant with `dpop: true` (RFC 9449), against the provider and API's DPoP support. */
import { build as buildPkg } from './pkg.js';

export function build(cfg) {
  return buildPkg({ ...cfg, dpop: true });
}
