import { afterEach, describe, expect, it } from '@jest/globals';
import { startExample, type RunningExample } from '../../example-app/start.js';
import { TestBrowser, authorizeAtProvider } from '../helpers/browser.js';
import { freePort } from '../helpers/global-setup.js';
import { CLIENT_ID, CLIENT_SECRET, startProvider, type TestProvider } from '../helpers/provider.js';

/** How the example starts in its other configurations (no browser needed). */

const running: Array<RunningExample | TestProvider> = [];
afterEach(async () => {
  while (running.length) await running.pop()!.close();
});

describe('example app configurations', () => {
  it('falls back to the memory stores, with one line saying so, when no Redis answers', async () => {
    const port = await freePort(); // nothing listens there
    const example = await startExample({
      port: 0,
      providerPort: 0,
      apiPort: 0,
      connectProviderPort: 0,
      connectApiPort: 0,
      redisUrl: `redis://127.0.0.1:${port}`,
      quiet: true,
      env: {},
    });
    running.push(example);
    expect(example.storage).toBe('memory');
    expect(example.logs.filter((l) => /Redis/.test(l))).toEqual([
      `No Redis at 127.0.0.1:${port}: using in-memory session and token stores (logins are lost on restart).`,
    ]);
    const home = await fetch(`${example.appUrl}/`);
    expect(home.status).toBe(200);
    expect(await home.text()).toContain('Log in');
  });

  it('the JSON route answers 401 login_required without a login, and the profile page redirects to login', async () => {
    const example = await startExample({
      port: 0,
      providerPort: 0,
      apiPort: 0,
      connectProviderPort: 0,
      connectApiPort: 0,
      redisUrl: process.env.REDIS_URL,
      quiet: true,
      env: {},
    });
    running.push(example);
    const data = await fetch(`${example.appUrl}/api/data`, { headers: { 'x-requested-with': 'XMLHttpRequest', accept: 'application/json' } });
    expect(data.status).toBe(401);
    expect(await data.json()).toEqual({ error: 'login_required' });
    const profile = await fetch(`${example.appUrl}/profile`, { redirect: 'manual' });
    expect(profile.status).toBe(302);
    expect(profile.headers.get('location')).toBe('/oauth/login?returnTo=%2Fprofile');
    // Logout from another site is refused (rule 11).
    const logout = await fetch(`${example.appUrl}/oauth/logout`, { method: 'POST', redirect: 'manual', headers: { origin: 'https://evil.example' } });
    expect(logout.status).toBe(403);
  });

  it('with ISSUER set, it starts no local provider or API and uses the given one', async () => {
    const appPort = await freePort();
    const provider = await startProvider({ redirectUris: [`http://localhost:${appPort}/oauth/callback`] });
    running.push(provider);
    const example = await startExample({
      quiet: true,
      redisUrl: process.env.REDIS_URL,
      env: {
        PORT: String(appPort),
        ISSUER: provider.issuer,
        CLIENT_ID,
        CLIENT_SECRET,
        API_BASE_URL: 'http://127.0.0.1:9',
        API_PATH: '/v1/me',
        CONNECT_PROVIDER_PORT: '0',
        CONNECT_API_PORT: '0',
      },
    });
    running.push(example);
    expect(example.providerUrl).toBeUndefined();
    expect(example.apiUrl).toBeUndefined();
    expect(example.appUrl).toBe(`http://localhost:${appPort}`);
    const login = await fetch(`${example.appUrl}/oauth/login`, { redirect: 'manual' });
    expect(login.status).toBe(302);
    expect(login.headers.get('location')).toMatch(new RegExp(`^${provider.issuer}/auth\\?`));
  });

  it('refuses to start with an unknown PROVIDER or without credentials for a real one', async () => {
    await expect(startExample({ port: 0, quiet: true, env: { PROVIDER: 'myspace' } })).rejects.toThrow(/PROVIDER must be one of github, google/);
    await expect(startExample({ port: 0, quiet: true, env: { PROVIDER: 'github' } })).rejects.toThrow(/Set CLIENT_ID and CLIENT_SECRET/);
    await expect(
      startExample({ port: 0, quiet: true, env: { ISSUER: 'https://id.example.com', CLIENT_ID: 'a', CLIENT_SECRET: 'b' } }),
    ).rejects.toThrow(/API_BASE_URL and API_PATH/);
  });

  it('M21: CONNECT_PROVIDER=github connects the real GitHub (the preset, no local GitHub); none turns the connection off; bad values are refused', async () => {
    const example = await startExample({
      port: 0,
      providerPort: 0,
      apiPort: 0,
      redisUrl: process.env.REDIS_URL,
      quiet: true,
      env: { CONNECT_PROVIDER: 'github', CONNECT_CLIENT_ID: 'Ov23liExample', CONNECT_CLIENT_SECRET: 'example-github-secret' },
    });
    running.push(example);
    expect(example.connectUrl).toBeUndefined();
    expect(example.logs).toContain(`Connect: GitHub (callback URL ${example.appUrl}/oauth/github/callback).`);
    const browser = new TestBrowser();
    // Not logged in: Connect sends the user to the login first (requireLogin).
    const early = await browser.request(`${example.appUrl}/oauth/github/login?returnTo=%2Fprofile`);
    expect(early.status).toBe(302);
    expect(early.location).toBe(`${example.appUrl}/oauth/login?returnTo=%2Foauth%2Fgithub%2Flogin%3FreturnTo%3D%252Fprofile`);
    // Logged in at the local provider, Connect goes to github.com (never followed: no network here).
    const start = await browser.request(`${example.appUrl}/oauth/login`);
    const callback = await authorizeAtProvider(browser, start.location!, 'alice', (u) => u.startsWith(`${example.appUrl}/oauth/callback`));
    expect((await browser.request(callback)).status).toBe(302);
    const connect = await browser.request(`${example.appUrl}/oauth/github/login?returnTo=%2Fprofile`);
    expect(connect.status).toBe(302);
    const to = new URL(connect.location!);
    expect(`${to.origin}${to.pathname}`).toBe('https://github.com/login/oauth/authorize');
    expect(to.searchParams.get('client_id')).toBe('Ov23liExample');
    expect(to.searchParams.get('redirect_uri')).toBe(`${example.appUrl}/oauth/github/callback`);
    expect(to.searchParams.get('scope')).toBe('read:user user:email');
    expect(connect.location).not.toContain('example-github-secret');

    const off = await startExample({
      port: 0,
      providerPort: 0,
      apiPort: 0,
      redisUrl: process.env.REDIS_URL,
      quiet: true,
      env: { CONNECT_PROVIDER: 'none' },
    });
    running.push(off);
    expect(off.connectUrl).toBeUndefined();
    expect((await fetch(`${off.appUrl}/oauth/github/login`, { redirect: 'manual' })).status).toBe(404);

    await expect(startExample({ port: 0, quiet: true, env: { CONNECT_PROVIDER: 'gitlab' } })).rejects.toThrow(
      /CONNECT_PROVIDER must be github or none/,
    );
    await expect(startExample({ port: 0, quiet: true, env: { CONNECT_PROVIDER: 'github' } })).rejects.toThrow(
      /Set CONNECT_CLIENT_ID and CONNECT_CLIENT_SECRET/,
    );
  });
});
