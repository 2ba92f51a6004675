/**
 * What sealing and opening one token record costs: the package's `RecordCipher` (node:crypto AES-256-GCM,
 * synchronous) against jose's `FlattenedEncrypt` / `flattenedDecrypt` (WebCrypto) on the same record, key and
 * additional data, in one process, in alternating slices. Each line: CPU and wall time per operation (median
 * over slices). Every API call whose record is not in the `tokenCacheMs` cache opens one record; every login
 * and refresh seals one.
 *
 *   npm run build && node bench/record-cipher.js [--slices 10] [--ops 3000]
 */
import { hkdfSync, webcrypto } from 'node:crypto';
import { parseArgs } from 'node:util';
import { FlattenedEncrypt, flattenedDecrypt } from 'jose';
import { RecordCipher } from '../dist/token-record.js';

const { values: opts } = parseArgs({ options: { slices: { type: 'string', default: '10' }, ops: { type: 'string', default: '3000' } } });
const slices = Math.max(2, Number(opts.slices));
const ops = Math.max(100, Number(opts.ops));

const SID = 'Qk3v6x1y0m3w9f8e7d6c5b4a3Z2Y1X0W';
const context = { issuer: 'https://issuer.example', clientId: 'client-1' };
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuv';
const cipher = new RecordCipher([SECRET], context);
// A record the size of a real one: a JWT access token, a refresh token, an ID token.
const record = {
  version: 3,
  access_token: `eyJ${'a'.repeat(780)}`,
  token_type: 'Bearer',
  refresh_token: 'r'.repeat(43),
  id_token: `eyJ${'i'.repeat(900)}`,
  expires_at: 2_000_000_000,
  scope: 'openid profile offline_access api:read',
  sub: 'user-1',
  updated_at: 1_700_000_000,
};
// jose with the same key bytes (a WebCrypto key, as the package held before), kid and additional data.
const keyBytes = Buffer.from(hkdfSync('sha256', Buffer.from(SECRET), Buffer.from('express-oauth-client/token-record/v1'), 'A256GCM token record key', 32));
const joseKey = await webcrypto.subtle.importKey('raw', keyBytes, 'AES-GCM', false, ['encrypt', 'decrypt']);
const aad = Buffer.from(`eoc1\u0000${context.issuer}\u0000${context.clientId}\u0000${SID}`);
async function joseSeal() {
  const jwe = await new FlattenedEncrypt(Buffer.from(JSON.stringify(record)))
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: cipher.currentKid })
    .setAdditionalAuthenticatedData(aad)
    .encrypt(joseKey);
  return `${jwe.protected}..${jwe.iv}.${jwe.ciphertext}.${jwe.tag}`;
}
async function joseOpen(value) {
  const [p, , iv, ciphertext, tag] = value.split('.');
  const { plaintext } = await flattenedDecrypt({ protected: p, iv, ciphertext, tag, aad: aad.toString('base64url') }, joseKey, {
    keyManagementAlgorithms: ['dir'],
    contentEncryptionAlgorithms: ['A256GCM'],
  });
  return JSON.parse(Buffer.from(plaintext).toString('utf8'));
}

// Both directions open each other's output (the format is the same); a mismatch stops the run.
const sealed = await cipher.seal(SID, record);
if ((await joseOpen(sealed)).access_token !== record.access_token) throw new Error('jose does not open what the package seals');
if ((await cipher.open(SID, await joseSeal())).access_token !== record.access_token) throw new Error('the package does not open what jose seals');

const LINES = [
  ['seal: the package (node:crypto)', () => cipher.seal(SID, record)],
  ['seal: jose (WebCrypto)', joseSeal],
  ['open: the package (node:crypto)', () => cipher.open(SID, sealed)],
  ['open: jose (WebCrypto)', () => joseOpen(sealed)],
];
const results = new Map(LINES.map(([name]) => [name, { cpu: [], wall: [] }]));
for (const [, fn] of LINES) for (let i = 0; i < 500; i++) await fn();
for (let s = 0; s < slices; s++) {
  for (let k = 0; k < LINES.length; k++) {
    const [name, fn] = LINES[(k + s) % LINES.length];
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) await fn();
    const c = process.cpuUsage(c0);
    results.get(name).cpu.push((c.user + c.system) / ops);
    results.get(name).wall.push(((performance.now() - t0) * 1000) / ops);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log('| operation on one record | CPU µs (all threads) | wall µs |');
console.log('|---|---:|---:|');
for (const [name, r] of results) console.log(`| ${name} | ${median(r.cpu).toFixed(1)} | ${median(r.wall).toFixed(1)} |`);
console.log(`(${slices} slices of ${ops} operations each, medians; record of ${JSON.stringify(record).length} bytes; ${new Date().toISOString()})`);
