import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { importPKCS8 } from 'jose';

/**
 * Client authentication at the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2, OpenID Connect Core §9): the
 * method, and for `private_key_jwt` the signing keys, validated once at startup with node:crypto (so a bad
 * key is a startup error, synchronously) and imported as non-extractable CryptoKeys when first used. No
 * message ever shows a key's value: only its position, `kid`, type and algorithm.
 */

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt';

const METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt'];

/** A private key as the `clientAssertionKey` option accepts it: a PEM (PKCS#8, PKCS#1, SEC1) or a private JWK. */
export type PrivateKeyInput = string | Record<string, unknown>;

/** One signing key of `private_key_jwt`. */
export interface ClientSigningKey {
  kid: string | undefined;
  alg: string;
  /** The private key, kept in memory only; never serialized except to import it into WebCrypto. */
  key: KeyObject;
  /** What the JWKS route publishes: the public members only, with `kid`, `alg` and `use`. */
  publicJwk: Record<string, unknown>;
}

/** The resolved client authentication: the method, and its signing keys (first signs, all are published). */
export interface ResolvedClientAuth {
  method: ClientAuthMethod;
  keys: ClientSigningKey[];
}

/** Which key types (node:crypto `asymmetricKeyType`) and curves each JWS algorithm takes (RFC 7518 §3.1, RFC 8037). */
const ALGORITHMS: Readonly<Record<string, { types: string[]; curve?: string }>> = {
  RS256: { types: ['rsa'] },
  RS384: { types: ['rsa'] },
  RS512: { types: ['rsa'] },
  PS256: { types: ['rsa', 'rsa-pss'] },
  PS384: { types: ['rsa', 'rsa-pss'] },
  PS512: { types: ['rsa', 'rsa-pss'] },
  ES256: { types: ['ec'], curve: 'prime256v1' },
  ES384: { types: ['ec'], curve: 'secp384r1' },
  ES512: { types: ['ec'], curve: 'secp521r1' },
  EdDSA: { types: ['ed25519'] },
  Ed25519: { types: ['ed25519'] },
};

function defaultAlg(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return 'RS256';
  if (type === 'rsa-pss') return 'PS256';
  if (type === 'ed25519') return 'EdDSA';
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return Object.entries(ALGORITHMS).find(([, v]) => v.curve === curve)?.[0];
  }
  return undefined;
}

function describe(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return `${key.asymmetricKeyType ?? 'unknown'}${curve ? ` ${curve}` : ''}`;
}

/** The keys of `clientAssertionKey`: one key, a list, or a JWK Set (`{ keys: [...] }`). */
function keyList(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'object' && value !== null && Array.isArray((value as { keys?: unknown }).keys)) return (value as { keys: unknown[] }).keys;
  return [value];
}

function readKey(input: unknown, name: string, fail: (message: string) => never): { key: KeyObject; kid?: string; alg?: string } {
  if (typeof input === 'string') {
    if (/-----BEGIN (RSA )?PUBLIC KEY-----|-----BEGIN CERTIFICATE-----/.test(input)) {
      fail(
        `\`${name}\` is a public key or certificate: give the private key (PEM \`-----BEGIN PRIVATE KEY-----\`); the public key is what the provider gets.`,
      );
    }
    try {
      return { key: createPrivateKey(input) };
    } catch {
      fail(`\`${name}\` could not be read as a PEM private key (PKCS#8 \`-----BEGIN PRIVATE KEY-----\`, PKCS#1 or SEC1).`);
    }
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    fail(`\`${name}\` must be a PEM string or a private JWK object.`);
  }
  const jwk = input as Record<string, unknown>;
  if (jwk.kty === 'oct') fail(`\`${name}\` is a symmetric key: use \`tokenEndpointAuthMethod: 'client_secret_jwt'\` with \`clientSecret\` instead.`);
  if (typeof jwk.d !== 'string') {
    fail(`\`${name}\` is a public JWK (it has no \`d\`): give the private JWK; the public part is what the provider gets.`);
  }
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid.length === 0)) fail(`\`${name}.kid\` must be a non-empty string.`);
  if (jwk.alg !== undefined && typeof jwk.alg !== 'string') fail(`\`${name}.alg\` must be a string.`);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: jwk as never, format: 'jwk' });
  } catch {
    fail(`\`${name}\` could not be read as a private JWK (check \`kty\`, \`crv\` and the key members).`);
  }
  return { key, kid: jwk.kid, alg: jwk.alg };
}

/**
 * Resolves `tokenEndpointAuthMethod`, `clientSecret`, `clientAssertionKey` and `clientAssertionAlg`. Startup
 * errors: an unknown method; a secret method without `clientSecret`; `private_key_jwt` without a key; a key
 * that is public (a JWK without `d`, a SPKI PEM or a certificate) or symmetric; a key that does not fit the
 * algorithm (type, curve, RSA under 2048 bits); several keys without distinct `kid`s.
 */
export function resolveClientAuth(
  options: { tokenEndpointAuthMethod?: unknown; clientSecret?: unknown; clientAssertionKey?: unknown; clientAssertionAlg?: unknown },
  fail: (message: string) => never,
): ResolvedClientAuth {
  const method = (options.tokenEndpointAuthMethod ?? 'client_secret_basic') as ClientAuthMethod;
  if (!METHODS.includes(method)) {
    fail(`\`tokenEndpointAuthMethod\` must be one of ${METHODS.map((m) => `'${m}'`).join(', ')} (got ${JSON.stringify(method)}).`);
  }
  if (method !== 'private_key_jwt') {
    if (options.clientAssertionKey !== undefined || options.clientAssertionAlg !== undefined) {
      fail("`clientAssertionKey` and `clientAssertionAlg` are only used with `tokenEndpointAuthMethod: 'private_key_jwt'`.");
    }
    if (typeof options.clientSecret !== 'string' || options.clientSecret.length === 0) {
      fail(
        `\`clientSecret\` is required with \`tokenEndpointAuthMethod: '${method}'\` (set it from an environment variable, never in code), or use 'private_key_jwt' with \`clientAssertionKey\`.`,
      );
    }
    if (method === 'client_secret_jwt' && options.clientSecret.length < 32) {
      fail("`clientSecret` must be at least 32 characters with 'client_secret_jwt' (it is the HMAC key of the assertion, RFC 7518 §3.2).");
    }
    return { method, keys: [] };
  }
  if (options.clientAssertionKey === undefined) {
    fail(
      "`clientAssertionKey` is required with `tokenEndpointAuthMethod: 'private_key_jwt'`: the client's private key (PEM or JWK, or a JWK Set for rotation).",
    );
  }
  const alg = options.clientAssertionAlg;
  if (alg !== undefined && (typeof alg !== 'string' || !Object.hasOwn(ALGORITHMS, alg))) {
    fail(`\`clientAssertionAlg\` must be one of ${Object.keys(ALGORITHMS).join(', ')} (got ${JSON.stringify(alg)}).`);
  }
  const inputs = keyList(options.clientAssertionKey);
  if (inputs.length === 0) fail('`clientAssertionKey` is an empty key set.');
  const keys = inputs.map((input, i): ClientSigningKey => {
    const name = inputs.length > 1 ? `clientAssertionKey[${i}]` : 'clientAssertionKey';
    const read = readKey(input, name, fail);
    if (alg !== undefined && read.alg !== undefined && read.alg !== alg) {
      fail(`\`${name}.alg\` is ${read.alg} but \`clientAssertionAlg\` is ${alg}: make them agree.`);
    }
    const keyAlg = alg ?? read.alg ?? defaultAlg(read.key);
    const fits = keyAlg === undefined ? undefined : ALGORITHMS[keyAlg];
    if (!keyAlg || !fits)
      fail(`\`${name}\` (${describe(read.key)}) has no supported signing algorithm: use an RSA, EC P-256/384/521 or Ed25519 key.`);
    const curve = read.key.asymmetricKeyDetails?.namedCurve;
    if (!fits.types.includes(read.key.asymmetricKeyType ?? '') || (fits.curve !== undefined && fits.curve !== curve)) {
      fail(`\`${name}\` is a ${describe(read.key)} key, which does not match the algorithm ${keyAlg}: give a matching key or change the algorithm.`);
    }
    const bits = read.key.asymmetricKeyDetails?.modulusLength;
    if (bits !== undefined && bits < 2048) fail(`\`${name}\` is a ${bits}-bit RSA key: use at least 2048 bits.`);
    // The public key's JWK: only public members exist on it (kty, n, e / crv, x, y).
    const publicJwk = createPublicKey(read.key).export({ format: 'jwk' }) as Record<string, unknown>;
    return {
      kid: read.kid,
      alg: keyAlg,
      key: read.key,
      publicJwk: { ...publicJwk, ...(read.kid ? { kid: read.kid } : {}), alg: keyAlg, use: 'sig' },
    };
  });
  if (keys.length > 1) {
    if (keys.some((k) => k.kid === undefined))
      fail('`clientAssertionKey` has several keys: give each a `kid` (JWKs with distinct `kid` members) so the provider can pick the right one.');
    if (new Set(keys.map((k) => k.kid)).size !== keys.length) fail('`clientAssertionKey` has two keys with the same `kid`.');
  }
  return { method, keys };
}

/** Imports the signing key (the first of the set) as a non-extractable WebCrypto key, for openid-client. */
export async function importSigningKey(key: ClientSigningKey): Promise<{ key: CryptoKey; kid?: string }> {
  const pem = key.key.export({ format: 'pem', type: 'pkcs8' }) as string;
  const crypto = await importPKCS8(pem, key.alg === 'Ed25519' ? 'EdDSA' : key.alg, { extractable: false });
  return key.kid === undefined ? { key: crypto } : { key: crypto, kid: key.kid };
}

/** The public JWK Set served at the `jwks` route (empty unless `private_key_jwt`). */
export function publicJwks(auth: ResolvedClientAuth): { keys: Record<string, unknown>[] } {
  return { keys: auth.keys.map((k) => k.publicJwk) };
}
