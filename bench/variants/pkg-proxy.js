/** Variant "this package" for P6: the pkg variant plus `app.use('/p6', oauthProxy({ target: apiUrl }))`. */
import { oauthProxy } from 'express-oauth-client';
import { build as buildPkg } from './pkg.js';

export async function build(options) {
  const built = await buildPkg(options);
  // Room for the 200 MB streaming check: the caps are per route.
  built.app.use('/p6', oauthProxy({ target: options.apiUrl, maxResponseBytes: 512 * 1024 * 1024, timeout: 120_000 }));
  return built;
}
