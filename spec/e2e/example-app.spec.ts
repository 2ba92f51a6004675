import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startExample, type RunningExample } from '../../example-app/start.js';

/**
 * The example app in a real browser: Debian's Chromium driven by playwright-core, against the example's
 * own local provider, API and Redis. It also proves rules 7 and 10 where they matter most, in the browser:
 * no token reaches a page, a cookie, web storage or any response, and the session cookie is HttpOnly and
 * SameSite=Lax.
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
// The README's screenshot is refreshed only on request (UPDATE_SCREENSHOT=1), so a test run leaves the tree clean.
const SCREENSHOT = process.env.UPDATE_SCREENSHOT
  ? path.join(root, 'example-app', 'screenshot.png')
  : path.join(root, 'example-app', 'screenshots', 'tmp', 'profile.png');
const inCI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

/** Everything the browser sent and received, for the no-token checks. */
interface Traffic {
  text: string[];
  pending: Promise<void>[];
}

function record(context: BrowserContext, traffic: Traffic): void {
  context.on('request', (request) => {
    traffic.pending.push(
      request.allHeaders().then((headers) => {
        traffic.text.push(`REQUEST ${request.method()} ${request.url()}\n${JSON.stringify(headers)}\n${request.postData() ?? ''}`);
      }),
    );
  });
  context.on('response', (response) => {
    traffic.pending.push(
      (async () => {
        const headers = await response.allHeaders();
        // Redirects have no body to read; everything else does.
        const body = await response.body().then(
          (b) => b.toString('utf8'),
          () => '',
        );
        traffic.text.push(`RESPONSE ${response.status()} ${response.url()}\n${JSON.stringify(headers)}\n${body}`);
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

describe('example app in a real browser (Chromium)', () => {
  it('logs in through the provider pages, shows API data, refreshes an expired token, logs out; no token reaches the browser', async () => {
    if (!existsSync(CHROMIUM)) {
      const message = `Chromium not found at ${CHROMIUM}: install it with \`apt-get install -y chromium\` to run the browser test.`;
      if (inCI) throw new Error(`${message} (CI must run it; .ci/run installs it.)`);
      console.warn(`SKIPPED example-app browser test. ${message}`);
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
    const { appUrl, providerUrl } = example;
    expect(example.storage).toBe('redis');

    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, headless: true });
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    const traffic: Traffic = { text: [], pending: [] };
    record(context, traffic);
    const page: Page = await context.newPage();
    const pages: string[] = [];
    const snapshot = async () => {
      pages.push(await page.content());
    };

    // Home page, "Log in".
    await page.goto(`${appUrl}/`);
    await snapshot();
    await page.getByRole('link', { name: 'Log in' }).click();

    // The provider's login and consent pages.
    await page.waitForURL((u) => u.href.startsWith(providerUrl!));
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('any password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();

    // Back on the app: the profile page, rendered on the server with the API's data.
    await page.waitForURL(`${appUrl}/profile`);
    await expect(page.locator('#api-data [data-key="sub"]').textContent()).resolves.toBe('alice');
    await expect(page.locator('#api-data [data-key="calls"]').textContent()).resolves.toBe('1');
    await expect(page.locator('main').textContent()).resolves.toContain('Alice Liddell');
    await snapshot();
    expect(example.stats.logins).toBe(1);
    const firstExpiry = await page.locator('#expires').getAttribute('data-expires-at');
    expect(firstExpiry).toBeTruthy();

    // Wait until the page's own countdown says the access token has expired (its expiry is the signal).
    await page.waitForSelector('#expires[data-state="expired"]', { timeout: (ACCESS_TOKEN_TTL + 5) * 1000 });
    const refreshesBefore = example.stats.refreshes;
    await page.getByRole('button', { name: 'Call the API again' }).click();
    await page.waitForSelector('#api-status[data-refreshed]');
    await expect(page.locator('#api-data [data-key="calls"]').textContent()).resolves.toBe('2');
    expect(await page.locator('#api-status').getAttribute('data-refreshed')).toBe('true');
    expect(example.stats.refreshes).toBe(refreshesBefore + 1);
    expect(example.stats.refreshFailures).toBe(0);
    const secondExpiry = await page.locator('#expires').getAttribute('data-expires-at');
    expect(Date.parse(secondExpiry!)).toBeGreaterThan(Date.parse(firstExpiry!));
    await snapshot();
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // Rule 10: the session cookie is HttpOnly and SameSite=Lax; rule 7: no token in cookies or web storage.
    const cookies = await context.cookies();
    const sessionCookie = cookies.find((c) => c.name === 'connect.sid' && c.domain === new URL(appUrl).hostname);
    expect(sessionCookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    const storage = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } }));

    // Log out (POST form), confirm at the provider, and land on the home page again.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL(`${appUrl}/`);
    await expect(page.getByRole('link', { name: 'Log in' }).isVisible()).resolves.toBe(true);
    await snapshot();
    expect(example.stats.logouts).toBe(1);
    expect((await context.cookies()).find((c) => c.name === 'connect.sid')).toBeUndefined();

    await Promise.all(traffic.pending);
    const { access, refresh, id } = example.issued;
    // The capture really saw the tokens: one set at login, one at the refresh (rotated refresh token).
    expect(access.size).toBe(2);
    expect(refresh.size).toBe(2);
    expect(id.size).toBeGreaterThanOrEqual(1);

    const browserSide = [...pages, JSON.stringify(cookies), storage];
    const secrets = [...access, ...refresh, example.clientSecret!];
    for (const secret of secrets) {
      for (const text of [...browserSide, ...traffic.text, ...example.logs]) expect(text.includes(secret)).toBe(false);
    }
    // The ID token does pass through the browser, by design of OpenID Connect RP-initiated logout: as the
    // `id_token_hint` of the app's redirect to the provider's end-session endpoint, and from there only
    // within the provider's own pages. Never in the app's pages, cookies, storage or other responses.
    const urlOf = (t: string) => t.split('\n')[0]!.split(' ')[2]!;
    for (const idToken of id) {
      for (const text of [...browserSide, ...example.logs]) expect(text.includes(idToken)).toBe(false);
      const unexpected = traffic.text
        .filter((t) => t.includes(idToken))
        .filter((t) => !t.startsWith(`RESPONSE 302 ${appUrl}/oauth/logout`) && !urlOf(t).startsWith(`${providerUrl}/session/end`))
        .map((t) => t.split('\n')[0]!.slice(0, 120));
      expect(unexpected).toEqual([]);
    }
    await context.close();
  });
});
