import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from '@jest/globals';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startExample, type RunningExample } from '../../example-app/start.js';

/**
 * The example's single-page app (BFF) in Chromium: it logs in, reads /oauth/session, calls the API only
 * through the /bff/api proxy, sees a refresh happen, and logs out with a fetch. No token in the DOM, web
 * storage, cookies or any response the page sees (rules 7 and 16).
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
const inCI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

let example: RunningExample | undefined;
let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
  await example?.close();
});

function record(context: BrowserContext, text: string[], pending: Promise<void>[], urls: string[]): void {
  context.on('request', (request) => {
    urls.push(`${request.method()} ${request.url()}`);
    pending.push(request.allHeaders().then((h) => void text.push(`${request.url()}\n${JSON.stringify(h)}\n${request.postData() ?? ''}`)));
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

describe('K: the single-page app example in Chromium', () => {
  it('K22: logs in, shows the session, calls the API through the proxy, shows a refresh, logs out; no token reaches the page', async () => {
    if (!existsSync(CHROMIUM)) {
      const message = `Chromium not found at ${CHROMIUM}: install it with \`apt-get install -y chromium\`.`;
      if (inCI) throw new Error(message);
      console.warn(`SKIPPED SPA browser test. ${message}`);
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
    const { appUrl, providerUrl, apiUrl } = example;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, headless: true });
    const context = await browser.newContext();
    const text: string[] = [];
    const pending: Promise<void>[] = [];
    const urls: string[] = [];
    record(context, text, pending, urls);
    const page: Page = await context.newPage();
    const doms: string[] = [];

    await page.goto(`${appUrl}/spa`);
    await page.locator('#login').waitFor();
    doms.push(await page.content());
    await page.locator('#login').click();
    await page.waitForURL((u) => u.href.startsWith(providerUrl!));
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('any password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();

    await page.waitForURL(`${appUrl}/spa`);
    await page.locator('#session [data-key="sub"]').waitFor();
    await expect(page.locator('#session [data-key="sub"]').textContent()).resolves.toBe('alice');
    const firstExpiry = await page.locator('#expires').getAttribute('data-expires-at');
    expect(Date.parse(firstExpiry!)).toBeGreaterThan(Date.now() - 60_000);

    // Let the access token expire, then call the API: the server refreshes first, the page sees the new expiry.
    await page.waitForTimeout(Math.max(0, Date.parse(firstExpiry!) - Date.now()) + 500);
    const refreshesBefore = example.stats.refreshes;
    await page.locator('#call').click();
    await page.waitForSelector('#api-status[data-refreshed]');
    await expect(page.locator('#api-data [data-key="sub"]').textContent()).resolves.toBe('alice');
    expect(await page.locator('#api-status').getAttribute('data-refreshed')).toBe('true');
    expect(example.stats.refreshes).toBeGreaterThan(refreshesBefore);
    expect(Date.parse((await page.locator('#expires').getAttribute('data-expires-at'))!)).toBeGreaterThan(Date.parse(firstExpiry!));
    doms.push(await page.content());

    const cookies = await context.cookies();
    const storage = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } }));

    // Logout by fetch (204), then the page navigates back to itself, logged out.
    await page.locator('#logout').click();
    await page.locator('#login').waitFor();
    doms.push(await page.content());
    expect(example.stats.logouts).toBe(1);

    await Promise.all(pending);
    // The page never talked to the API directly: only through the same-origin proxy.
    expect(urls.filter((u) => u.includes(apiUrl!))).toEqual([]);
    expect(urls.some((u) => u === `GET ${appUrl}/bff/api/me`)).toBe(true);
    const secrets = [...example.issued.access, ...example.issued.refresh, ...example.issued.id, example.clientSecret!];
    expect(example.issued.access.size).toBeGreaterThanOrEqual(2);
    for (const secret of secrets) {
      for (const t of [...doms, JSON.stringify(cookies), storage, ...text]) expect(t.includes(secret)).toBe(false);
    }
    await context.close();
  }, 60_000);
});
