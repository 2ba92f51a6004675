import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestBrowser } from '../helpers/browser.js';
import { createEnv, type TestEnv } from '../helpers/env.js';
import { RecordCipher } from '../../lib/token-record.js';
import { CLIENT_ID } from '../helpers/provider.js';

let env: TestEnv;
let bystander: TestBrowser;

beforeAll(async () => {
  env = await createEnv();
  bystander = (await env.login(undefined, { user: 'carol' })).browser;
});
afterAll(async () => {
  await env?.close();
});

const b64 = (s: string) => Buffer.from(s).toString('base64url');
const unb64 = (s: string) => Buffer.from(s, 'base64url').toString('utf8');

/** Logs in, replaces the stored record with `tamper(raw)`, and returns what the API route answers. */
async function withTamperedRecord(tamper: (raw: string, sid: string) => Promise<string | null> | string | null) {
  const { browser } = await env.login();
  const sid = env.sid(browser);
  const raw = (await env.rawRecord(sid))!;
  const bystanderRaw = await env.rawRecord(env.sid(bystander));
  const replaced = await tamper(raw, sid);
  if (replaced === null) await env.tokenStore.delete(sid);
  else await env.tokenStore.set(sid, replaced, 60_000);
  const json = await browser.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
  const page = await browser.request(`${env.appUrl}/profile`);
  return { browser, sid, json, page, bystanderRaw };
}

async function expectLoggedOutCleanly(r: Awaited<ReturnType<typeof withTamperedRecord>>) {
  expect(r.json.status).toBe(401);
  expect(JSON.parse(r.json.body)).toEqual({ error: 'login_required' });
  // Pages go to login (requireAuth sees the login ended), never a 500.
  expect(r.page.status).toBe(302);
  expect(r.page.location).toContain('/oauth/login');
  // The unreadable record is deleted.
  expect(await env.rawRecord(r.sid)).toBeNull();
  // Other sessions are untouched and still work.
  expect(await env.rawRecord(env.sid(bystander))).toBe(r.bystanderRaw);
  const other = await bystander.request(`${env.appUrl}/api/me`, { headers: { accept: 'application/json' } });
  expect(other.status).toBe(200);
  expect(env.logger.lines.join('\n')).toContain('could not be decrypted');
}

describe('F: token records at rest (rule 6)', () => {
  it('F1: the stored record is a JWE with dir/A256GCM and a kid, and holds no plaintext token', async () => {
    const { browser } = await env.login();
    const sid = env.sid(browser);
    const raw = (await env.rawRecord(sid))!;
    const header = JSON.parse(unb64(raw.split('.')[0]!));
    expect(header).toEqual({ alg: 'dir', enc: 'A256GCM', kid: expect.any(String) });
    const record = (await env.readRecord(sid))!;
    expect(raw).not.toContain(record.access_token);
    expect(raw).not.toContain(record.refresh_token);
    // TTL on the key.
    const ttl = await env.redis.pTTL(`${env.prefix}tok:{${sid}}`);
    expect(ttl).toBeGreaterThan(0);
  });

  it('F2: a bit flip in the ciphertext means logged out, no 500', async () => {
    await expectLoggedOutCleanly(
      await withTamperedRecord((raw) => {
        const parts = raw.split('.');
        const ct = Buffer.from(parts[3]!, 'base64url');
        ct[0]! ^= 1;
        parts[3] = ct.toString('base64url');
        return parts.join('.');
      }),
    );
  });

  it('F3: a truncated record means logged out', async () => {
    await expectLoggedOutCleanly(await withTamperedRecord((raw) => raw.slice(0, raw.length - 7)));
  });

  it("F4: a record copied to another session's key does not decrypt there", async () => {
    const { browser: thief } = await env.login(undefined, { user: 'mallory' });
    const thiefSid = env.sid(thief);
    await expectLoggedOutCleanly(
      await withTamperedRecord(async () => {
        // The victim's session now holds mallory's record (moved between keys).
        return (await env.rawRecord(thiefSid))!;
      }),
    );
  });

  for (const [name, change] of [
    ['alg', { alg: 'A256KW' }],
    ['enc', { enc: 'A128GCM' }],
    ['zip', { zip: 'DEF' }],
    ['alg none', { alg: 'none' }],
  ] as const) {
    it(`F5: a JWE header with a swapped ${name} means logged out`, async () => {
      await expectLoggedOutCleanly(
        await withTamperedRecord((raw) => {
          const parts = raw.split('.');
          parts[0] = b64(JSON.stringify({ ...JSON.parse(unb64(parts[0]!)), ...change }));
          return parts.join('.');
        }),
      );
    });
  }

  it('F6: a record under an unknown key means logged out', async () => {
    await expectLoggedOutCleanly(
      await withTamperedRecord(async (_raw, sid) =>
        new RecordCipher(['some-other-key-0123456789-abcdefghijklmnop'], { issuer: env.provider.issuer, clientId: CLIENT_ID }).seal(
          sid,
          (await env.readRecord(sid))!,
        ),
      ),
    );
  });

  it('F7: a record bound to another issuer or client does not decrypt', async () => {
    await expectLoggedOutCleanly(
      await withTamperedRecord(async (_raw, sid) => {
        const keys = Array.isArray(env.options.encryptionKey) ? env.options.encryptionKey : [env.options.encryptionKey];
        return new RecordCipher(keys, { issuer: env.provider.issuer, clientId: 'another-client' }).seal(sid, (await env.readRecord(sid))!);
      }),
    );
  });

  it('F8: a flushed record (Redis lost it) means login required, never a 500', async () => {
    const r = await withTamperedRecord(() => null);
    expect(r.json.status).toBe(401);
    expect(r.page.status).toBe(302);
  });

  it('F9: garbage that is not a JWE at all means logged out', async () => {
    await expectLoggedOutCleanly(await withTamperedRecord(() => 'not-a-jwe'));
  });
});
