import { createHash, hkdfSync, randomBytes, webcrypto } from 'node:crypto';
import { FlattenedEncrypt, flattenedDecrypt } from 'jose';

const ENC = 'A256GCM';
const ALG = 'dir';
const SALT = Buffer.from('express-oauth-client/token-record/v1');

interface DerivedKey {
  kid: string;
  /** A non-extractable WebCrypto key: jose uses it directly (no KeyObject conversion per call). */
  key: Promise<webcrypto.CryptoKey>;
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
      const key = Buffer.from(hkdfSync('sha256', ikm, SALT, 'A256GCM token record key', 32));
      const kid = b64u(Buffer.from(hkdfSync('sha256', ikm, SALT, 'token record key id', 9)));
      const imported = webcrypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']);
      return { kid, key: imported };
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

  private aad(sid: string): Uint8Array {
    return Buffer.from(`eoc1\u0000${this.context}\u0000${sid}`, 'utf8');
  }

  /** Encrypts a JSON value for one session; the result is a compact-shaped JWE string. */
  async seal(sid: string, value: unknown): Promise<string> {
    const jwe = await new FlattenedEncrypt(Buffer.from(JSON.stringify(value), 'utf8'))
      .setProtectedHeader({ alg: ALG, enc: ENC, kid: this.current.kid })
      .setAdditionalAuthenticatedData(this.aad(sid))
      .encrypt(await this.current.key);
    return `${jwe.protected}..${jwe.iv}.${jwe.ciphertext}.${jwe.tag}`;
  }

  /** Kid of a stored record without decrypting it, or undefined when the header is unreadable. */
  kidOf(value: string): string | undefined {
    try {
      const header: unknown = JSON.parse(Buffer.from(value.slice(0, value.indexOf('.')), 'base64url').toString('utf8'));
      const kid = (header as { kid?: unknown } | null)?.kid;
      return typeof kid === 'string' ? kid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Decrypts a value of the given session. Throws {@link RecordUnreadableError} for anything but valid JSON sealed for it. */
  async open(sid: string, value: string): Promise<unknown> {
    const parts = value.split('.');
    if (parts.length !== 5 || parts[1] !== '') throw new RecordUnreadableError('malformed');
    const [protectedHeader, , iv, ciphertext, tag] = parts as [string, string, string, string, string];
    const kid = this.kidOf(value);
    const key = kid === undefined ? undefined : this.byKid.get(kid);
    if (!key) throw new RecordUnreadableError('unknown key id');
    let plaintext: Uint8Array;
    try {
      ({ plaintext } = await flattenedDecrypt({ protected: protectedHeader, iv, ciphertext, tag, aad: b64u(this.aad(sid)) }, await key.key, {
        keyManagementAlgorithms: [ALG],
        contentEncryptionAlgorithms: [ENC],
      }));
    } catch {
      throw new RecordUnreadableError('decryption failed');
    }
    try {
      return JSON.parse(Buffer.from(plaintext).toString('utf8')) as unknown;
    } catch {
      throw new RecordUnreadableError('not JSON');
    }
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
