import { createHash, hkdfSync } from 'node:crypto';
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
