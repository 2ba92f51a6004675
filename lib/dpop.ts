import { createHash, randomBytes, webcrypto } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint } from 'jose';

/**
 * DPoP (RFC 9449) key material and proofs. A key pair is made per login (ES256); its private JWK lives only in
 * the encrypted token record (`token-record.ts`), with its thumbprint `jkt` (RFC 7638): never in the session,
 * never in a response, a log line or an error. When used, it is imported as a non-extractable CryptoKey, once
 * per record object. The protocol calls (code exchange, refresh) sign their proofs through openid-client
 * (`authorization-server.ts`); the calls to the API sign theirs here ({@link createProof}).
 */

/** What a DPoP-bound token record keeps of its key: the private JWK (EC P-256) and its thumbprint. */
export interface DPoPKeyMaterial {
  jwk: { kty: 'EC'; crv: 'P-256'; x: string; y: string; d: string };
  jkt: string;
}

/** The key in usable form: a non-extractable private key, the public key and its JWK (the proof's `jwk` header). */
export interface DPoPKey {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: { kty: 'EC'; crv: 'P-256'; x: string; y: string };
  jkt: string;
}

/** A DPoP key that cannot be used: missing, malformed, or not the key its thumbprint names. */
export class DPoPKeyError extends Error {
  constructor(readonly reason: string) {
    super(`DPoP key unusable: ${reason}`);
    this.name = 'DPoPKeyError';
  }
}

const B64URL = /^[A-Za-z0-9_-]{20,100}$/;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** Whether a decrypted value has the shape of {@link DPoPKeyMaterial} (the token record's check). */
export function isDPoPKeyMaterial(value: unknown): value is DPoPKeyMaterial {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { jwk, jkt } = value as { jwk?: Record<string, unknown>; jkt?: unknown };
  if (typeof jkt !== 'string' || !B64URL.test(jkt) || typeof jwk !== 'object' || jwk === null) return false;
  return jwk.kty === 'EC' && jwk.crv === 'P-256' && ['x', 'y', 'd'].every((m) => typeof jwk[m] === 'string' && B64URL.test(jwk[m]));
}

/**
 * Keys already imported, by thumbprint (each record decrypt makes a new material object; importing and
 * checking a key costs about a millisecond, signing a proof a fraction of that). An entry is used only when
 * the private part matches too, so a tampered record never borrows another key. Bounded: oldest out first.
 */
const imported = new Map<string, { d: string; key: Promise<DPoPKey> }>();
const MAX_IMPORTED = 10_000;

async function importKey(material: DPoPKeyMaterial): Promise<DPoPKey> {
  const { kty, crv, x, y, d } = material.jwk;
  const publicJwk = { kty, crv, x, y };
  let privateKey: CryptoKey;
  let publicKey: CryptoKey;
  try {
    privateKey = await webcrypto.subtle.importKey('jwk', { kty, crv, x, y, d }, EC, false, ['sign']);
    publicKey = await webcrypto.subtle.importKey('jwk', publicJwk, EC, true, ['verify']);
  } catch {
    throw new DPoPKeyError('malformed key');
  }
  if ((await calculateJwkThumbprint(publicJwk)) !== material.jkt) throw new DPoPKeyError('thumbprint mismatch');
  // The private key must be the public key's: sign and verify once.
  const probe = randomBytes(16);
  const sig = await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, probe);
  if (!(await webcrypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, publicKey, sig, probe))) throw new DPoPKeyError('key pair mismatch');
  return { privateKey, publicKey, publicJwk, jkt: material.jkt };
}

/** The usable key of a record's material; rejects with {@link DPoPKeyError} when it does not import or match. */
export function dpopKey(material: DPoPKeyMaterial): Promise<DPoPKey> {
  const hit = imported.get(material.jkt);
  if (hit && hit.d === material.jwk.d) return hit.key;
  const key = importKey(material);
  imported.delete(material.jkt);
  imported.set(material.jkt, { d: material.jwk.d, key });
  // A key that failed to import is not kept.
  key.catch(() => imported.get(material.jkt)?.key === key && imported.delete(material.jkt));
  if (imported.size > MAX_IMPORTED) imported.delete(imported.keys().next().value!);
  return key;
}

/** A fresh key pair for one login: the material for the record, and the key for the code exchange. */
export async function createDPoPKey(): Promise<{ material: DPoPKeyMaterial; key: DPoPKey }> {
  const pair = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const jwk = (await webcrypto.subtle.exportKey('jwk', pair.privateKey)) as DPoPKeyMaterial['jwk'];
  const material: DPoPKeyMaterial = {
    jwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, d: jwk.d },
    jkt: await calculateJwkThumbprint({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }),
  };
  const key = await dpopKey(material);
  return { material, key };
}

/** `htu` of a proof: the request URL without query and fragment (RFC 9449 §4.2). */
export function proofTarget(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * A DPoP proof for one request to a resource server (RFC 9449 §4.2, §7): `htm`, `htu`, a fresh `jti` and
 * `iat`, `ath` (the access token's SHA-256, base64url) and the server's `nonce` when it asked for one.
 */
export function createProof(key: DPoPKey, htm: string, htu: string, accessToken: string, nonce: string | undefined): Promise<string> {
  const payload: Record<string, string> = {
    htm: htm.toUpperCase(),
    htu,
    jti: randomBytes(16).toString('base64url'),
    ath: createHash('sha256').update(accessToken).digest('base64url'),
  };
  if (nonce !== undefined) payload.nonce = nonce;
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk }).setIssuedAt().sign(key.privateKey);
}

/** A nonce a server sent (`DPoP-Nonce`): printable ASCII, bounded (RFC 9449 §8.1 NQCHAR). */
export function readNonce(value: unknown): string | undefined {
  const v = Array.isArray(value) ? (value as unknown[])[0] : value;
  return typeof v === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]{1,512}$/.test(v) ? v : undefined;
}

/** Whether a response is a resource server's nonce challenge (RFC 9449 §9): 401, `WWW-Authenticate: DPoP error="use_dpop_nonce"`. */
export function isNonceChallenge(status: number, wwwAuthenticate: unknown): boolean {
  const v = Array.isArray(wwwAuthenticate) ? (wwwAuthenticate as unknown[]).join(', ') : wwwAuthenticate;
  return status === 401 && typeof v === 'string' && /^\s*DPoP\b/i.test(v) && /error\s*=\s*"?use_dpop_nonce"?/i.test(v);
}

/** The last nonce each API origin sent, bounded (per `oauth()` instance; nonces are not user state). */
export class NonceCache {
  private readonly nonces = new Map<string, string>();
  get(origin: string): string | undefined {
    return this.nonces.get(origin);
  }
  set(origin: string, nonce: string | undefined): void {
    if (nonce === undefined) return;
    this.nonces.delete(origin);
    this.nonces.set(origin, nonce);
    if (this.nonces.size > 100) this.nonces.delete(this.nonces.keys().next().value!);
  }
}
