import { createCipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { FlattenedEncrypt, flattenedDecrypt } from 'jose';
import { RecordCipher, RecordUnreadableError, type TokenRecord } from '../../lib/token-record.js';

// Known answers for rule 6 (keys derived from the configured secret with HKDF-SHA256; a key id in the header).
const SECRET = 'kat-secret-0123456789-abcdefghijklmnopqrstuv';
const SALT = 'express-oauth-client/token-record/v1';
const KEY_LABEL = 'A256GCM token record key';
const KID_LABEL = 'token record key id';
const KAT_KEY_HEX = 'cb9a4f138d2f4955eacf6b98dafc192632adffd5e047dbf0528e8e739f1f5ed8';
const KAT_KID = 'lrvSbL9bqlY8';
const CONTEXT = { issuer: 'https://issuer.example', clientId: 'client-1' };
const SID = 'session-id-1';

const hkdf = (secret: string, label: string, length: number) =>
  Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.from(SALT), label, length));
const aad = (sid: string) => Buffer.from(`eoc1\u0000${CONTEXT.issuer}\u0000${CONTEXT.clientId}\u0000${sid}`, 'utf8');
const record = (): TokenRecord => ({
  version: 3,
  access_token: 'at-123',
  token_type: 'bearer',
  refresh_token: 'rt-456',
  expires_at: 2_000_000_000,
  updated_at: 1_700_000_000,
});

/** A record sealed by the test itself, with the given raw key and kid. */
async function sealWith(key: Buffer, kid: string, sid = SID): Promise<string> {
  const jwe = await new FlattenedEncrypt(Buffer.from(JSON.stringify(record())))
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid })
    .setAdditionalAuthenticatedData(aad(sid))
    .encrypt(new Uint8Array(key));
  return `${jwe.protected}..${jwe.iv}.${jwe.ciphertext}.${jwe.tag}`;
}

describe('F: key derivation and key id (rule 6)', () => {
  it('F18: known answers: the AES key and the kid are HKDF-SHA256 of the secret under their own labels', async () => {
    // The known answers agree with an independent derivation from the literal salt and labels.
    expect(hkdf(SECRET, KEY_LABEL, 32).toString('hex')).toBe(KAT_KEY_HEX);
    expect(hkdf(SECRET, KID_LABEL, 9).toString('base64url')).toBe(KAT_KID);

    const cipher = new RecordCipher([SECRET], CONTEXT);
    expect(cipher.currentKid).toBe(KAT_KID);
    // What the package seals opens with the known key (and only the header names the kid).
    const sealed = await cipher.seal(SID, record());
    const [protectedHeader, , iv, ciphertext, tag] = sealed.split('.') as [string, string, string, string, string];
    expect(JSON.parse(Buffer.from(protectedHeader, 'base64url').toString())).toEqual({ alg: 'dir', enc: 'A256GCM', kid: KAT_KID });
    const { plaintext } = await flattenedDecrypt(
      { protected: protectedHeader, iv, ciphertext, tag, aad: aad(SID).toString('base64url') },
      new Uint8Array(Buffer.from(KAT_KEY_HEX, 'hex')),
    );
    expect(JSON.parse(Buffer.from(plaintext).toString())).toEqual(record());
    // And what the known key seals, the package opens.
    expect(await cipher.open(SID, await sealWith(Buffer.from(KAT_KEY_HEX, 'hex'), KAT_KID))).toEqual(record());
  });

  it('F18: the kid reveals nothing of the key: not a part, prefix, hash or encoding of the key bytes or of the secret', () => {
    const key = Buffer.from(KAT_KEY_HEX, 'hex');
    const kid = new RecordCipher([SECRET], CONTEXT).currentKid;
    const kidBytes = Buffer.from(kid, 'base64url');
    expect(key.includes(kidBytes)).toBe(false);
    for (const encoding of ['hex', 'base64', 'base64url'] as const) {
      expect(key.toString(encoding).includes(kid)).toBe(false);
      expect(Buffer.from(SECRET).toString(encoding).includes(kid)).toBe(false);
    }
    expect(SECRET.includes(kid)).toBe(false);
    for (const digest of [createHash('sha256').update(key).digest(), createHash('sha256').update(SECRET).digest()]) {
      expect(digest.includes(kidBytes)).toBe(false);
      expect(digest.toString('base64url').includes(kid)).toBe(false);
      expect(digest.toString('hex').includes(kid)).toBe(false);
    }
    // Nor an HKDF output under the key's label (whose first bytes would be the key's own first bytes).
    expect(hkdf(SECRET, KEY_LABEL, 64).includes(kidBytes)).toBe(false);
    // Each secret has its own kid.
    expect(new RecordCipher([SECRET.replace('kat', 'KAT')], CONTEXT).currentKid).not.toBe(kid);
  });

  it('F19: the key is chosen by kid alone: a record under the right key but an unknown kid does not open', async () => {
    const cipher = new RecordCipher([SECRET], CONTEXT);
    const rightKeyWrongKid = await sealWith(Buffer.from(KAT_KEY_HEX, 'hex'), 'unknown-kid');
    await expect(cipher.open(SID, rightKeyWrongKid)).rejects.toBeInstanceOf(RecordUnreadableError);
    // With two keys, a record under the old key but labelled with the current kid does not open either.
    const other = 'other-secret-0123456789-ABCDEFGHIJKLMNOPQRSTUV';
    const rotated = new RecordCipher([other, SECRET], CONTEXT);
    await expect(rotated.open(SID, await sealWith(Buffer.from(KAT_KEY_HEX, 'hex'), rotated.currentKid))).rejects.toBeInstanceOf(
      RecordUnreadableError,
    );
    // The control: the right key under its own kid opens, through the rotation list too.
    expect(await rotated.open(SID, await sealWith(Buffer.from(KAT_KEY_HEX, 'hex'), KAT_KID))).toEqual(record());
  });
});

describe('F: the record is a standard JWE, sealed and opened with node:crypto (rule 6)', () => {
  const cipher = new RecordCipher([SECRET], CONTEXT);
  const KEY = new Uint8Array(Buffer.from(KAT_KEY_HEX, 'hex'));
  const values = (): TokenRecord[] => [
    record(),
    { ...record(), access_token: 'ü€😀\u0000"\\'.repeat(50), scope: 'openid profile' },
    { ...record(), access_token: 'x'.repeat(20_000), id_token: 'a.b.c' },
  ];

  it('F25: what the package seals, jose opens; what jose seals, the package opens (both ways, several values)', async () => {
    for (const value of values()) {
      const sealed = await cipher.seal(SID, value);
      const [protectedHeader, encryptedKey, iv, ciphertext, tag] = sealed.split('.') as [string, string, string, string, string];
      expect(encryptedKey).toBe('');
      const { plaintext } = await flattenedDecrypt({ protected: protectedHeader, iv, ciphertext, tag, aad: aad(SID).toString('base64url') }, KEY, {
        keyManagementAlgorithms: ['dir'],
        contentEncryptionAlgorithms: ['A256GCM'],
      });
      expect(JSON.parse(Buffer.from(plaintext).toString())).toEqual(value);
      const jwe = await new FlattenedEncrypt(Buffer.from(JSON.stringify(value)))
        .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: KAT_KID })
        .setAdditionalAuthenticatedData(aad(SID))
        .encrypt(KEY);
      expect(await cipher.open(SID, `${jwe.protected}..${jwe.iv}.${jwe.ciphertext}.${jwe.tag}`)).toEqual(value);
    }
    // A fresh IV per seal: the same value never seals to the same string.
    expect(await cipher.seal(SID, record())).not.toBe(await cipher.seal(SID, record()));
  });

  it('F26: a truncated tag, a wrong IV length, another algorithm, crit, zip or non-canonical base64url does not open (and nothing else is thrown)', async () => {
    const KEY_BYTES = Buffer.from(KAT_KEY_HEX, 'hex');
    const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');
    /**
     * A record sealed correctly (the right key, the AAD over the header as sent) but for what a case changes: the
     * header's fields, the IV's length or the tag's. Only the check under test can refuse it.
     */
    const sealRaw = (fields: Record<string, unknown> = {}, { ivBytes = 12, tagBytes = 16 } = {}) => {
      const header = b64(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid: KAT_KID, ...fields }));
      const iv = randomBytes(ivBytes);
      const c = createCipheriv('aes-256-gcm', KEY_BYTES, iv, { authTagLength: tagBytes });
      c.setAAD(Buffer.from(`${header}.${aad(SID).toString('base64url')}`, 'ascii'));
      const ct = Buffer.concat([c.update(JSON.stringify(record()), 'utf8'), c.final()]);
      return `${header}..${b64(iv)}.${b64(ct)}.${b64(c.getAuthTag())}`;
    };
    // The control: sealed this way with nothing changed, it opens.
    expect(await cipher.open(SID, sealRaw())).toEqual(record());
    const [h, , iv, ct, tag] = sealRaw().split('.') as [string, string, string, string, string];
    // The tag's last character carries 2 bits and 4 unused ones: set one of those, the bytes stay the same.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const lastTag = alphabet[alphabet.indexOf(tag.at(-1)!) | 1]!;
    expect(lastTag).not.toBe(tag.at(-1));
    const refused: Record<string, string> = {
      // GCM checks a tag of 96 or 32 bits as such unless the length is pinned: a correct short tag must not do.
      'a correct 96-bit tag': sealRaw({}, { tagBytes: 12 }),
      'a correct 32-bit tag': sealRaw({}, { tagBytes: 4 }),
      'empty tag': `${h}..${iv}.${ct}.`,
      'a correct record under a 128-bit IV': sealRaw({}, { ivBytes: 16 }),
      'alg A256KW': sealRaw({ alg: 'A256KW' }),
      'enc A128GCM': sealRaw({ enc: 'A128GCM' }),
      'a crit header': sealRaw({ crit: ['exp'], exp: 1 }),
      'a zip header': sealRaw({ zip: 'DEF' }),
      'a header that is an array': `${b64('["dir"]')}..${iv}.${ct}.${tag}`,
      'a padded ciphertext': `${h}..${iv}.${ct}=.${tag}`,
      'a base64 (not url) character': `${h}..${iv}.${ct}.${tag.slice(0, 5)}+${tag.slice(6)}`,
      'a stray character after the IV': `${h}..${iv}A.${ct}.${tag}`,
      'unused bits set in the last character of the tag': `${h}..${iv}.${ct}.${tag.slice(0, -1)}${lastTag}`,
      'an encrypted key where dir has none': `${h}.${b64(Buffer.alloc(32))}.${iv}.${ct}.${tag}`,
      'six parts': `${h}..${iv}.${ct}.${tag}.x`,
    };
    for (const [what, value] of Object.entries(refused)) {
      const outcome = await cipher.open(SID, value).then(
        () => 'opened',
        (err: unknown) => (err instanceof RecordUnreadableError ? 'refused' : `threw ${String(err)}`),
      );
      expect({ what, outcome }).toEqual({ what, outcome: 'refused' });
    }
    // Not a string at all (a store answering a Buffer or a number): refused the same way.
    await expect(cipher.open(SID, 42 as unknown as string)).rejects.toBeInstanceOf(RecordUnreadableError);
    // And a record that opens does so only under its own session id.
    const sealed = await cipher.seal(SID, record());
    expect(await cipher.open(SID, sealed)).toEqual(record());
    await expect(cipher.open('another-session', sealed)).rejects.toBeInstanceOf(RecordUnreadableError);
  });

  it('F27: the key is never shown: inspecting or serialising the cipher shows no key bytes', async () => {
    const { inspect } = await import('node:util');
    const key = Buffer.from(KAT_KEY_HEX, 'hex');
    const shown = `${inspect(cipher, { depth: 10, showHidden: true })} ${JSON.stringify(cipher)}`;
    for (const encoding of ['hex', 'base64', 'base64url'] as const) expect(shown.includes(key.toString(encoding))).toBe(false);
    // As util.inspect shows a Buffer's bytes (hex pairs separated by spaces) and a Uint8Array's (decimals).
    const spacedHex = key
      .subarray(0, 8)
      .toString('hex')
      .replace(/(..)(?!$)/g, '$1 ');
    expect(shown.includes(spacedHex)).toBe(false);
    expect(shown.includes([...key.subarray(0, 8)].join(', '))).toBe(false);
    expect(shown.includes(SECRET)).toBe(false);
  });
});
