import { createCipheriv, createDecipheriv, createHash, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';

const ENC = 'A256GCM';
const ALG = 'dir';
const SALT = Buffer.from('express-oauth-client/token-record/v1');
/** AES-GCM with a 96-bit IV and the full 128-bit tag, as JWE `A256GCM` requires (RFC 7518 §5.3). */
const IV_BYTES = 12;
const TAG_BYTES = 16;

interface DerivedKey {
  kid: string;
  /** The AES key as a `KeyObject` (inspecting it shows no key bytes). */
  key: KeyObject;
  /** The protected header this key seals under, base64url: `{"alg":"dir","enc":"A256GCM","kid":...}`. */
  header: string;
}

/** Raised for any value that cannot be opened: tampered, truncated, moved, unknown key, other algorithm, wrong shape. */
export class RecordUnreadableError extends Error {
  constructor(readonly reason: string) {
    super(`token record unreadable: ${reason}`);
    this.name = 'RecordUnreadableError';
  }
}

function b64u(input: Uint8Array | string): string {
  return Buffer.from(input).toString('base64url');
}

/**
 * Seals and opens JSON values bound to a session: JWE with `dir` + `A256GCM`, a `kid` in the protected
 * header, keys derived once with HKDF-SHA256 from each configured secret (the first seals, all open). The
 * additional authenticated data binds a value to its session id and to a context (issuer and client id),
 * and is supplied by the reader (it is not stored), so a value copied under another session's key does
 * not open. The derivation labels are part of the stored format: changing them makes every record unreadable.
 */
export class SessionCipher {
  private readonly current: DerivedKey;
  private readonly byKid: Map<string, DerivedKey>;
  private readonly context: string;

  /**
   * @param context - what a value is bound to besides its session id: the issuer and client id, and for a
   *   named instance its name (so a record copied from one provider's key to another's does not open); the
   *   unnamed instance's binding is unchanged from 1.x, so its records keep opening.
   */
  constructor(secrets: readonly string[], context: { issuer: string; clientId: string; instance?: string }) {
    const keys = secrets.map((secret) => {
      const ikm = Buffer.from(secret, 'utf8');
      const key = createSecretKey(Buffer.from(hkdfSync('sha256', ikm, SALT, 'A256GCM token record key', 32)));
      const kid = b64u(Buffer.from(hkdfSync('sha256', ikm, SALT, 'token record key id', 9)));
      return { kid, key, header: b64u(JSON.stringify({ alg: ALG, enc: ENC, kid })) };
    });
    this.current = keys[0]!;
    this.byKid = new Map(keys.map((k) => [k.kid, k]));
    this.context =
      context.instance === undefined
        ? `${context.issuer}\u0000${context.clientId}`
        : `${context.issuer}\u0000${context.clientId}\u0000instance:${context.instance}`;
  }

  /** Key id of the key that encrypts new records. */
  get currentKid(): string {
    return this.current.kid;
  }

  /**
   * The GCM additional data of a JWE with external AAD (RFC 7516 §5.1 step 14): the protected header as
   * serialized, a dot, and the base64url of the session binding.
   */
  private aad(protectedHeader: string, sid: string): Buffer {
    return Buffer.from(`${protectedHeader}.${b64u(`eoc1\u0000${this.context}\u0000${sid}`)}`, 'ascii');
  }

  /**
   * Encrypts a JSON value for one session; the result is a compact-shaped JWE string (`dir`, `A256GCM`).
   * The work is synchronous (`node:crypto`, no thread-pool round trip); the promise is kept for callers.
   */
  async seal(sid: string, value: unknown): Promise<string> {
    const { key, header } = this.current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(this.aad(header, sid));
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return `${header}..${b64u(iv)}.${b64u(ciphertext)}.${b64u(cipher.getAuthTag())}`;
  }

  /**
   * Decrypts a value of the given session. Throws {@link RecordUnreadableError} for anything but valid JSON
   * sealed for it: the five parts of a compact JWE with an empty encrypted key, canonical base64url, a header
   * naming exactly `dir` and `A256GCM` (no `crit`, no `zip`) and a known kid, a 96-bit IV and a full 128-bit
   * tag (a shorter tag is refused, never checked as a truncated one).
   */
  async open(sid: string, value: string): Promise<unknown> {
    if (typeof value !== 'string') throw new RecordUnreadableError('malformed');
    const parts = value.split('.');
    if (parts.length !== 5 || parts[1] !== '') throw new RecordUnreadableError('malformed');
    const decoded = parts.map(canonicalBytes);
    if (decoded.includes(undefined)) throw new RecordUnreadableError('malformed');
    const [headerBytes, , iv, ciphertext, tag] = decoded as [Buffer, Buffer, Buffer, Buffer, Buffer];
    const header = parseHeader(headerBytes);
    if (!header || header.alg !== ALG || header.enc !== ENC || 'crit' in header || 'zip' in header) {
      throw new RecordUnreadableError('unsupported header');
    }
    const key = typeof header.kid === 'string' ? this.byKid.get(header.kid) : undefined;
    if (!key) throw new RecordUnreadableError('unknown key id');
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new RecordUnreadableError('malformed');
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_BYTES });
      decipher.setAuthTag(tag);
      decipher.setAAD(this.aad(parts[0]!, sid));
      plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch {
      throw new RecordUnreadableError('decryption failed');
    }
    try {
      return JSON.parse(plaintext.toString('utf8')) as unknown;
    } catch {
      throw new RecordUnreadableError('not JSON');
    }
  }
}

/**
 * The bytes of a part written in base64url exactly as they encode (no padding, no `+` or `/`, no stray
 * length, unused bits zero), or undefined: Node's decoder ignores what it cannot use, so without this one
 * record could be written as several strings.
 */
function canonicalBytes(part: string): Buffer | undefined {
  const bytes = Buffer.from(part, 'base64url');
  return b64u(bytes) === part ? bytes : undefined;
}

/** A JWE protected header (JSON object), or undefined when it is not one. */
function parseHeader(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const header: unknown = JSON.parse(bytes.toString('utf8'));
    return header !== null && typeof header === 'object' && !Array.isArray(header) ? (header as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** 256-bit random value, base64url. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** SHA-256, base64url: used for keys derived from secrets we must not store (the `state`). */
export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}
