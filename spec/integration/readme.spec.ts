import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestBrowser, authorizeAtProvider } from '../helpers/browser.js';
import { freePort } from '../helpers/global-setup.js';
import { startProvider, CLIENT_ID, CLIENT_SECRET, type TestProvider } from '../helpers/provider.js';
import { startResourceServer, type ResourceServer } from '../helpers/env.js';

/** The first ```js block of the README's "Quick start" section, as a user would paste it. */
function quickStartCode(): string {
  const readme = readFileSync(path.resolve('README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README has no js block under "## Quick start"');
  return m[1]!;
}

// Inside the package directory, so that `import 'express-oauth-client'` resolves to this package (dist/).
const file = path.resolve('spec/.readme-quickstart.tmp.mjs');
let provider: TestProvider;
let api: ResourceServer;
let child: ChildProcess;
let appUrl: string;

beforeAll(async () => {
  const port = await freePort();
  appUrl = `http://localhost:${port}`;
  provider = await startProvider({ redirectUris: [`${appUrl}/oauth/callback`] });
  api = await startResourceServer(provider);
  writeFileSync(file, quickStartCode());
  child = spawn(process.execPath, [file], {
    env: {
      ...process.env,
      PORT: String(port),
      ISSUER: provider.issuer,
      CLIENT_ID,
      CLIENT_SECRET,
      API_BASE_URL: api.url,
      TOKEN_KEY: 'fgPuEwh2dTC2hovlbbaxhWWEhuvBKYX2Ruzmdcx6Aqs=',
      SESSION_SECRET: 'readme-session-secret',
      NODE_OPTIONS: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`quick start did not start: ${stderr}`)), 15000);
    child.stdout!.on('data', (d) => {
      if (String(d).includes(appUrl)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`quick start exited with ${code}: ${stderr}`)));
  });
});
afterAll(async () => {
  child?.kill('SIGKILL');
  rmSync(file, { force: true });
  await api?.close();
  await provider?.close();
});

describe('README quick start', () => {
  it('runs as pasted: logs in through a local oidc-provider and calls the API', async () => {
    const browser = new TestBrowser();
    const home = await browser.request(`${appUrl}/`);
    expect(home.body).toContain('Log in');
    const login = await browser.request(`${appUrl}/oauth/login?returnTo=/profile`);
    expect(login.status).toBe(302);
    const cb = await authorizeAtProvider(browser, login.location!, 'alice', (u) => u.startsWith(`${appUrl}/oauth/callback`));
    const done = await browser.request(cb);
    expect(done.status).toBe(302);
    expect(done.location).toBe(`${appUrl}/profile`);
    const profile = await browser.request(`${appUrl}/profile`);
    expect(profile.status).toBe(200);
    expect(JSON.parse(profile.body)).toMatchObject({ sub: 'alice' });
    const logout = await browser.request(`${appUrl}/oauth/logout`, { method: 'POST', headers: { origin: appUrl } });
    expect(logout.status).toBe(302);
    const after = await browser.request(`${appUrl}/profile`, { headers: { accept: 'application/json' } });
    expect(after.status).toBe(401);
  });
});
