import { afterEach, describe, expect, it } from '@jest/globals';
import { startExample, type RunningExample } from '../../example-app/start.js';
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
    const example = await startExample({ port: 0, providerPort: 0, apiPort: 0, redisUrl: `redis://127.0.0.1:${port}`, quiet: true, env: {} });
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
    const example = await startExample({ port: 0, providerPort: 0, apiPort: 0, redisUrl: process.env.REDIS_URL, quiet: true, env: {} });
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
});
