import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startExample, type RunningExample } from '../../example-app/start.js';

/**
 * "Your devices" in the example app (issue 15, SECURITY.md rule 17, family L), in Chromium: the same user logged
 * in from two browsers (two contexts, two cookies, two provider sessions) sees both logins, this one marked; "Sign
 * out of all other devices" from one ends the other, which is then logged out; the page never shows a session id;
 * a cross-site POST to the button's route is refused.
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
const inCI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';
const UA = (device: string) => `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36 ${device}`;

let example: RunningExample | undefined;
let browser: Browser | undefined;
let skip = false;
beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    const message = `Chromium not found at ${CHROMIUM}: install it with \`apt-get install -y chromium\` to run the browser test.`;
    if (inCI) throw new Error(`${message} (CI must run it; .ci/run installs it.)`);
    console.warn(`SKIPPED example-app sessions browser test. ${message}`);
    skip = true;
    return;
  }
  example = await startExample({
    port: 0,
    providerPort: 0,
    apiPort: 0,
    connectProviderPort: 0,
    connectApiPort: 0,
    redisUrl: process.env.REDIS_URL,
    quiet: true,
    env: {},
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, headless: true });
});
afterAll(async () => {
  await browser?.close();
  await example?.close();
});

/** A fresh browser (its own cookies) logged in as `login` through the provider's pages. */
async function loggedIn(login: string, device: string): Promise<{ context: BrowserContext; page: Page }> {
  const { appUrl, providerUrl } = example!;
  const context = await browser!.newContext({ userAgent: UA(device) });
  const page = await context.newPage();
  await page.goto(`${appUrl}/oauth/login?returnTo=%2Fsessions`);
  await page.waitForURL((u) => u.href.startsWith(providerUrl!));
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${appUrl}/sessions`);
  return { context, page };
}

const devicesOf = (page: Page) =>
  page
    .locator('#devices li.device')
    .evaluateAll((items) =>
      items.map((li) => ({ current: li.getAttribute('data-current') === 'true', agent: li.querySelector('.device-agent')?.textContent ?? '' })),
    );

describe('example app: your devices (Chromium)', () => {
  it('L30: the same user in two browsers sees 2 sessions, this one marked, no session id on the page; another user sees only their own', async () => {
    if (skip) return;
    const { appUrl } = example!;
    const a = await loggedIn('alice', 'Device-A');
    const b = await loggedIn('alice', 'Device-B');
    const carol = await loggedIn('carol', 'Device-C');
    try {
      expect(example!.storage).toBe('redis');

      await a.page.goto(`${appUrl}/sessions`);
      const seenByA = await devicesOf(a.page);
      expect(seenByA).toHaveLength(2);
      expect(seenByA.filter((d) => d.current)).toEqual([{ current: true, agent: expect.stringContaining('Device-A') }]);
      expect(seenByA.find((d) => !d.current)?.agent).toContain('Device-B');
      await expect(a.page.locator('#this-device').textContent()).resolves.toBe('this device');
      await expect(a.page.getByRole('button', { name: 'Sign out of all other devices' }).isVisible()).resolves.toBe(true);

      // B's page, rendered again: the same two logins, with B's marked.
      await b.page.reload();
      const seenByB = await devicesOf(b.page);
      expect(seenByB).toHaveLength(2);
      expect(seenByB.filter((d) => d.current).map((d) => d.agent)).toEqual([expect.stringContaining('Device-B')]);

      // Another user's logins are not listed.
      await carol.page.reload();
      const seenByCarol = await devicesOf(carol.page);
      expect(seenByCarol).toHaveLength(1);
      expect(seenByCarol[0]!.agent).toContain('Device-C');

      // Never a session id (nor a handle) in the page: the session cookie's value does not appear.
      const html = await a.page.content();
      for (const c of await a.context.cookies()) {
        if (c.name === 'connect.sid') {
          const sid = decodeURIComponent(c.value).replace(/^s:/, '').split('.')[0]!;
          expect(sid.length).toBeGreaterThan(10);
          expect(html.includes(sid)).toBe(false);
        }
      }
      expect(html).not.toMatch(/[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{32}/);
    } finally {
      await a.context.close();
      await b.context.close();
      await carol.context.close();
    }
  });

  it('L31: "Sign out of all other devices" ends the other browser\'s login (it is logged out), keeps this one and the other user\'s', async () => {
    if (skip) return;
    const { appUrl, providerUrl } = example!;
    const a = await loggedIn('bob', 'Device-A');
    const b = await loggedIn('bob', 'Device-B');
    const dave = await loggedIn('dave', 'Device-D');
    try {
      await a.page.goto(`${appUrl}/sessions`);
      expect(await devicesOf(a.page)).toHaveLength(2);
      const endedBefore = example!.stats.sessionsEnded;

      await a.page.getByRole('button', { name: 'Sign out of all other devices' }).click();
      await a.page.waitForURL(`${appUrl}/sessions?ended=1`);
      await expect(a.page.locator('#ended').getAttribute('data-ended')).resolves.toBe('1');
      const left = await devicesOf(a.page);
      expect(left).toEqual([{ current: true, agent: expect.stringContaining('Device-A') }]);
      await expect(a.page.locator('#no-others').isVisible()).resolves.toBe(true);
      expect(example!.stats.sessionsEnded).toBe(endedBefore + 1);

      // B is logged out: its JSON call gets 401 login_required, its pages go to the provider's login.
      const api = await b.page.evaluate(async () => {
        const r = await fetch('/api/data', { headers: { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' } });
        return { status: r.status, body: await r.json() };
      });
      expect(api).toEqual({ status: 401, body: expect.objectContaining({ error: 'login_required' }) });
      await b.page.goto(`${appUrl}/profile`);
      await b.page.waitForURL((u) => u.href.startsWith(providerUrl!) || u.href === `${appUrl}/`);
      expect(b.page.url().startsWith(`${appUrl}/profile`)).toBe(false);

      // A still works, API included; the other user's login is untouched.
      await a.page.goto(`${appUrl}/profile`);
      await expect(a.page.locator('#api-data [data-key="sub"]').textContent()).resolves.toBe('bob');
      await dave.page.goto(`${appUrl}/profile`);
      await expect(dave.page.locator('#api-data [data-key="sub"]').textContent()).resolves.toBe('dave');
    } finally {
      await a.context.close();
      await b.context.close();
      await dave.context.close();
    }
  });

  it('L32: a cross-site POST to "sign out of other devices" is refused (403) and ends nothing', async () => {
    if (skip) return;
    const { appUrl } = example!;
    const a = await loggedIn('erin', 'Device-A');
    const b = await loggedIn('erin', 'Device-B');
    try {
      const endedBefore = example!.stats.sessionsEnded;
      // The request a foreign page's form would send: the session cookie, but the browser marks it cross-site.
      const res = await a.context.request.post(`${appUrl}/sessions/end-others`, {
        headers: { 'Sec-Fetch-Site': 'cross-site', Origin: 'https://evil.example' },
        maxRedirects: 0,
      });
      expect(res.status()).toBe(403);
      const noOrigin = await a.context.request.post(`${appUrl}/sessions/end-others`, {
        headers: { Origin: 'https://evil.example' },
        maxRedirects: 0,
      });
      expect(noOrigin.status()).toBe(403);
      expect(example!.stats.sessionsEnded).toBe(endedBefore);
      await b.page.goto(`${appUrl}/sessions`);
      expect(await devicesOf(b.page)).toHaveLength(2);
    } finally {
      await a.context.close();
      await b.context.close();
    }
  });
});
