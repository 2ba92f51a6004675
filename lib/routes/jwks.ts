import type { Request, Response } from 'express';
import { publicJwks } from '../client-auth.js';
import type { Instance } from '../instance.js';

/**
 * `GET {jwks}`: the client's public keys (RFC 7517 JWK Set) for a provider that fetches them (`jwks_uri` in
 * the client's registration). Only the public members are served; without `private_key_jwt` there are no
 * keys and the route answers 404.
 */
export async function handleJwks(instance: Instance, _req: Request, res: Response): Promise<void> {
  const jwks = publicJwks(instance.cfg.clientAuth);
  if (jwks.keys.length === 0) {
    res.status(404).json({ error: 'not_found' });
    return;
  }
  // Public data, fetched by the provider: it may cache it (a rotation adds the new key here before it signs).
  res.setHeader('Cache-Control', 'public, max-age=300');
  res.type('application/jwk-set+json').send(JSON.stringify(jwks));
  return Promise.resolve();
}
