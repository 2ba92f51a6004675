import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { hkdfSync } from 'node:crypto';
import { FlattenedEncrypt } from 'jose';
import { RecordCipher } from '../../lib/token-record.js';
import { CLIENT_ID } from '../helpers/provider.js';

const KEY_A = 'b9DpxsHnQ/R6vcDITVn4YiU146uL8OR5/4LxE2yjZfQ=';
const KEY_B = 'NsBs9yy+ZS5RWndkHKQaP5L5Z2tOWIEkifDM8Z3a0bE=';

let envA: TestEnv;
const kidOf = (raw: string) => JSON.parse(Buffer.from(raw.split('.')[0]!, 'base64url').toString()).kid as string;
const json = { accept: 'application/json' };

beforeAll(async () => {
  envA = await createEnv({ oauth: { encryptionKey: KEY_A } });
});
afterAll(async () => {
  await envA?.close();
});

/** The same browser session, presented to another app instance that shares the stores. */
function callOn(env: TestEnv, browser: TestBrowser, from: TestEnv, path = '/api/me') {
  browser.cookies(env.appUrl).set('connect.sid', browser.cookies(from.appUrl).get('connect.sid')!);
  return browser.request(`${env.appUrl}${path}`, { headers: json });
}

describe('F: encryption key rotation (rule 6)', () => {
  it('F15: records under key A still work with [B, A], and are re-encrypted under B on the next write', async () => {
    const { browser } = await envA.login();
    const sid = envA.sid(browser);
    const rawA = (await envA.rawRecord(sid))!;
    const cipherA = new RecordCipher([KEY_A], { issuer: envA.provider.issuer, clientId: CLIENT_ID });
    const cipherB = new RecordCipher([KEY_B], { issuer: envA.provider.issuer, clientId: CLIENT_ID });
    expect(kidOf(rawA)).toBe(cipherA.currentKid);

    // tokenCacheMs 0: the test rewrites the record behind the app's back and needs the next call to see it.
    const envBA = await createEnv({ sharing: envA, oauth: { encryptionKey: [KEY_B, KEY_A], tokenCacheMs: 0 } });
    try {
      expect((await callOn(envBA, browser, envA)).status).toBe(200);
      // Reading does not rewrite; the next write (a refresh) does, under B.
      expect(await envA.rawRecord(sid)).toBe(rawA);
      const record = await cipherA.open(sid, rawA);
      await envA.tokenStore.set(sid, await cipherA.seal(sid, { ...record, expires_at: Math.floor(Date.now() / 1000) - 5, updated_at: 0 }), 60_000);
      expect((await callOn(envBA, browser, envA)).status).toBe(200);
      const rawB = (await envA.rawRecord(sid))!;
      expect(kidOf(rawB)).toBe(cipherB.currentKid);
      expect((await cipherB.open(sid, rawB)).version).toBe(record.version + 1);
    } finally {
      await envBA.close();
    }
  });

  it('F16: with [B] alone, records under A mean logged out (401, record deleted), never a 500', async () => {
    const { browser } = await envA.login();
    const sid = envA.sid(browser);
    const envB = await createEnv({ sharing: envA, oauth: { encryptionKey: KEY_B } });
    try {
      const res = await callOn(envB, browser, envA);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toEqual({ error: 'login_required' });
      expect(await envA.rawRecord(sid)).toBeNull();
    } finally {
      await envB.close();
    }
  });

  it("F20: a record under B's own key bytes but an unknown kid means logged out with [B] (only the kid check can refuse it)", async () => {
    const { browser } = await envA.login();
    const sid = envA.sid(browser);
    const record = (await envA.readRecord(sid))!;
    // Sealed with exactly the key [B] uses (HKDF of KEY_B under the key label), labelled with a kid nobody has.
    const keyB = Buffer.from(
      hkdfSync('sha256', Buffer.from(KEY_B), Buffer.from('express-oauth-client/token-record/v1'), 'A256GCM token record key', 32),
    );
    const aad = Buffer.from(`eoc1\u0000${envA.provider.issuer}\u0000${CLIENT_ID}\u0000${sid}`);
    const seal = async (kid: string) => {
      const jwe = await new FlattenedEncrypt(Buffer.from(JSON.stringify(record)))
        .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid })
        .setAdditionalAuthenticatedData(aad)
        .encrypt(new Uint8Array(keyB));
      return `${jwe.protected}..${jwe.iv}.${jwe.ciphertext}.${jwe.tag}`;
    };
    const envB = await createEnv({ sharing: envA, oauth: { encryptionKey: KEY_B, tokenCacheMs: 0 } });
    try {
      // The control: these bytes under B's real kid are a valid login for [B].
      await envA.tokenStore.set(sid, await seal(new RecordCipher([KEY_B], { issuer: envA.provider.issuer, clientId: CLIENT_ID }).currentKid), 60_000);
      expect((await callOn(envB, browser, envA)).status).toBe(200);
      // The same bytes under a kid nobody has: logged out, record deleted, never a 500.
      await envA.tokenStore.set(sid, await seal('unknown-kid'), 60_000);
      const res = await callOn(envB, browser, envA);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toEqual({ error: 'login_required' });
      expect(await envA.rawRecord(sid)).toBeNull();
      expect(envB.logger.lines.join('\n')).not.toContain(record.access_token);
    } finally {
      await envB.close();
    }
  });
});
