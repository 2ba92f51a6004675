import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startExample, type RunningExample } from '../../example-app/start.js';

/**
 * Several providers in the example app, in Chromium (SECURITY.md rule 15): log in with the local OpenID
 * Provider, connect the local GitHub-style provider (a second `oauth()` instance, `role: 'connect'`), see both
 * APIs' data, see both tokens refreshed, disconnect (the login and its data stay, GitHub's go), log out. No
 * token of either provider, and neither client secret, reaches a page, a cookie, web storage or any request
 * or response the browser saw.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ACCESS_TOKEN_TTL = 4;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// The docs' screenshot of a connected profile is rewritten only on request (UPDATE_SCREENSHOT=1).
const SCREENSHOT = process.env.UPDATE_SCREENSHOT
  ? path.join(root, 'example-app', 'screenshot-connected.png')
  : path.join(root, 'example-app', 'screenshots', 'tmp', 'connected.png');
const inCI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

function record(context: BrowserContext, text: string[], pending: Promise<void>[]): void {
  context.on('request', (request) => {
    pending.push(
      request.allHeaders().then((headers) => {
        text.push(`REQUEST ${request.method()} ${request.url()}\n${JSON.stringify(headers)}\n${request.postData() ?? ''}`);
      }),
    );
  });
  context.on('response', (response) => {
    pending.push(
      (async () => {
        const headers = await response.allHeaders();
        const body = await response.body().then(
          (b) => b.toString('utf8'),
          () => '',
        );
        text.push(`RESPONSE ${response.status()} ${response.url()}\n${JSON.stringify(headers)}\n${body}`);
      })(),
    );
  });
}

let example: RunningExample | undefined;
let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
  await example?.close();
});

describe('M: the example app with a connection, in Chromium', () => {
  it('M20: logs in, connects the local GitHub, sees both APIs, refreshes both, disconnects (the login and its data stay), logs out; no token of either provider reaches the browser', async () => {
    if (!existsSync(CHROMIUM)) {
      const message = `Chromium not found at ${CHROMIUM}: install it with \`apt-get install -y chromium\`.`;
      if (inCI) throw new Error(message);
      console.warn(`SKIPPED connect browser test. ${message}`);
      return;
    }
    example = await startExample({
      port: 0,
      providerPort: 0,
      apiPort: 0,
      connectProviderPort: 0,
      connectApiPort: 0,
      accessTokenTtl: ACCESS_TOKEN_TTL,
      redisUrl: process.env.REDIS_URL,
      quiet: true,
      env: {},
    });
    const { appUrl, providerUrl, connectUrl, connectApiUrl } = example;
    expect(example.storage).toBe('redis');
    expect(connectUrl).toBeDefined();

    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, headless: true });
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    const text: string[] = [];
    const pending: Promise<void>[] = [];
    record(context, text, pending);
    const page: Page = await context.newPage();
    const doms: string[] = [];
    const snapshot = async () => void doms.push(await page.content());
    const storages: string[] = [];
    const cookieJars: string[] = [];
    const browserState = async () => {
      storages.push(await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } })));
      cookieJars.push(JSON.stringify(await context.cookies()));
    };

    // Log in at the OpenID Provider.
    await page.goto(`${appUrl}/`);
    await page.getByRole('link', { name: 'Log in' }).click();
    await page.waitForURL((u) => u.href.startsWith(providerUrl!));
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('any password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${appUrl}/profile`);
    await expect(page.locator('#api-data [data-key="sub"]').textContent()).resolves.toBe('alice');
    await expect(page.locator('#connection').getAttribute('data-connected')).resolves.toBe('false');
    await snapshot();

    // Connect: the local GitHub's "Authorize" page, then back on the profile with both APIs' data.
    await page.getByRole('link', { name: 'Connect GitHub (local)' }).click();
    await page.waitForURL((u) => u.href.startsWith(`${connectUrl}/login/oauth/authorize`));
    await snapshot();
    await page.locator('input[name="login"]').fill('mona');
    await page.getByRole('button', { name: 'Authorize' }).click();
    await page.waitForURL(`${appUrl}/profile`);
    await expect(page.locator('#connection').getAttribute('data-connected')).resolves.toBe('true');
    await expect(page.locator('#connection-data [data-key="login"]').textContent()).resolves.toBe('mona');
    await expect(page.locator('#connection-data [data-key="calls"]').textContent()).resolves.toBe('1');
    await expect(page.locator('#api-data [data-key="sub"]').textContent()).resolves.toBe('alice');
    await expect(page.locator('#api-data [data-key="calls"]').textContent()).resolves.toBe('2');
    await expect(page.locator('main').textContent()).resolves.toContain('Alice Liddell');
    expect(example.stats).toMatchObject({ logins: 1, connects: 1 });
    await snapshot();
    await browserState();

    // Both access tokens expire (the same lifetime; each is refreshed once past half of it): the next page
    // view refreshes each on the server, the local GitHub's with its rotated refresh token.
    await page.waitForSelector('#expires[data-state="expired"]', { timeout: (ACCESS_TOKEN_TTL + 5) * 1000 });
    const connectRefreshesBefore = example.stats.connectRefreshes;
    await page.reload();
    await expect(page.locator('#connection-data [data-key="calls"]').textContent()).resolves.toBe('2');
    await expect(page.locator('#api-data [data-key="calls"]').textContent()).resolves.toBe('3');
    expect(example.stats.connectRefreshes).toBe(connectRefreshesBefore + 1);
    expect(example.stats.refreshes).toBeGreaterThanOrEqual(1);
    expect(example.stats.refreshFailures).toBe(0);
    await snapshot();
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await browserState();

    // A disconnect from another site is refused (same-origin rules of logout).
    const cross = await fetch(`${appUrl}/oauth/github/disconnect`, {
      method: 'POST',
      redirect: 'manual',
      headers: { origin: 'https://evil.example' },
    });
    expect(cross.status).toBe(403);
    expect(example.stats.disconnects).toBe(0);

    // Disconnect (a POST form): back on the profile, GitHub's data gone, the login and its API data still there.
    const lastGitHubToken = [...example.connectIssued.access].at(-1)!;
    await page.getByRole('button', { name: 'Disconnect GitHub (local)' }).click();
    await page.waitForURL(`${appUrl}/profile`);
    await expect(page.locator('#connection').getAttribute('data-connected')).resolves.toBe('false');
    expect(await page.locator('#connection-data').count()).toBe(0);
    await expect(page.getByRole('link', { name: 'Connect GitHub (local)' }).isVisible()).resolves.toBe(true);
    await expect(page.locator('#api-data [data-key="sub"]').textContent()).resolves.toBe('alice');
    await expect(page.locator('#api-data [data-key="calls"]').textContent()).resolves.toBe('4');
    expect(example.stats.disconnects).toBe(1);
    expect(example.stats.logouts).toBe(0);
    // The local GitHub revoked the connection's tokens.
    const revoked = await fetch(`${connectApiUrl}/user`, { headers: { authorization: `Bearer ${lastGitHubToken}` } });
    expect(revoked.status).toBe(401);
    // The page's own API button still works after the disconnect.
    await page.getByRole('button', { name: 'Call the API again' }).click();
    await page.waitForSelector('#api-status[data-refreshed]');
    await expect(page.locator('#api-data [data-key="calls"]').textContent()).resolves.toBe('5');
    await snapshot();
    await browserState();

    // Log out (POST form), confirm at the provider, back on the home page.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL(`${appUrl}/`);
    await expect(page.getByRole('link', { name: 'Log in' }).isVisible()).resolves.toBe(true);
    expect(example.stats.logouts).toBe(1);
    expect((await context.cookies()).find((c) => c.name === 'connect.sid')).toBeUndefined();
    await snapshot();
    await browserState();

    await Promise.all(pending);
    // The capture saw every token: one set per login or connect, one per refresh (refresh tokens rotated).
    expect(example.issued.access.size).toBe(1 + example.stats.refreshes);
    expect(example.connectIssued.access.size).toBe(1 + example.stats.connectRefreshes);
    expect(example.connectIssued.refresh.size).toBe(1 + example.stats.connectRefreshes);
    expect(example.stats.connectRefreshes).toBeGreaterThanOrEqual(1);
    const secrets = [
      ...example.issued.access,
      ...example.issued.refresh,
      ...example.connectIssued.access,
      ...example.connectIssued.refresh,
      example.clientSecret!,
      example.connectClientSecret!,
    ];
    const seen = [...doms, ...storages, ...cookieJars, ...text, ...example.logs];
    for (const secret of secrets) {
      const leaks = seen.filter((t) => t.includes(secret)).map((t) => t.split('\n')[0]!.slice(0, 120));
      expect(leaks).toEqual([]);
    }
    // The ID token only as the id_token_hint of RP-initiated logout (see example-app.spec.ts).
    const urlOf = (t: string) => t.split('\n')[0]!.split(' ')[2]!;
    for (const idToken of example.issued.id) {
      for (const t of [...doms, ...storages, ...cookieJars, ...example.logs]) expect(t.includes(idToken)).toBe(false);
      const unexpected = text
        .filter((t) => t.includes(idToken))
        .filter((t) => !t.startsWith(`RESPONSE 302 ${appUrl}/oauth/logout`) && !urlOf(t).startsWith(`${providerUrl}/session/end`))
        .map((t) => t.split('\n')[0]!.slice(0, 120));
      expect(unexpected).toEqual([]);
    }
    await context.close();
  }, 60_000);
});
