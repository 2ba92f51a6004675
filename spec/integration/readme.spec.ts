import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestBrowser, authorizeAtProvider } from '../helpers/browser.js';
import { connectRedis, type Redis } from '../helpers/env.js';
import { freePort } from '../helpers/global-setup.js';

/** The first ```<lang> block after `heading` in the README, as a user would copy it. */
function readmeBlock(heading: string, lang: string): string {
  const readme = readFileSync(path.resolve('README.md'), 'utf8');
  const at = readme.indexOf(heading);
  if (at < 0) throw new Error(`README has no "${heading}"`);
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(readme.slice(at));
  if (!m) throw new Error(`README has no ${lang} block under "${heading}"`);
  return m[1]!;
}

const quickStart = () => readmeBlock('## Quick start', 'js');
const envExample = () => readFileSync(path.resolve('.env.example'), 'utf8');

/** KEY=value lines of a .env file (comments and blank lines skipped). */
function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

interface Child {
  process: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

const children: Child[] = [];
const files: string[] = [];

function start(args: string[], env: Record<string, string>): Child {
  const proc = spawn(process.execPath, args, { env: { ...process.env, NODE_OPTIONS: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const child: Child = { process: proc, stdout: '', stderr: '', exited: new Promise((r) => proc.on('exit', (code) => r(code))) };
  proc.stdout!.on('data', (d) => (child.stdout += d));
  proc.stderr!.on('data', (d) => (child.stderr += d));
  children.push(child);
  return child;
}

/** Resolves once the child printed something matching `re` (polls its output; rejects if it exits first). */
async function waitFor(child: Child, re: RegExp, ms = 15000): Promise<RegExpExecArray> {
  let exited = false;
  void child.exited.then(() => (exited = true));
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const m = re.exec(child.stdout);
    if (m) return m;
    if (exited) throw new Error(`exited before printing ${re}: ${child.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${re}: ${child.stdout}\n${child.stderr}`);
}

/**
 * Runs the README's Quick start block with Express `expressModule` ('express' = 5, 'express4' = 4), against
 * `example-app/start.js --provider-only`, with the settings of .env.example (ports and URLs made free).
 */
async function startQuickStart(expressModule: 'express' | 'express4', redisUrl: string) {
  const port = await freePort();
  const appUrl = `http://localhost:${port}`;
  const settings = parseEnv(envExample());
  const provider = start(['example-app/start.js', '--provider-only'], {
    PORT: String(port),
    APP_URL: appUrl,
    PROVIDER_PORT: '0',
    API_PORT: '0',
    CONNECT_PROVIDER_PORT: '0',
    CONNECT_API_PORT: '0',
    CLIENT_ID: settings.CLIENT_ID!,
    // CLIENT_SECRET left to the provider's default: it must be the value in .env.example.
  });
  await waitFor(provider, /API_BASE_URL=\S+\n/);
  const printed = parseEnv(provider.stdout);
  expect(printed.CLIENT_SECRET).toBe(settings.CLIENT_SECRET);

  let code = quickStart();
  if (expressModule === 'express4') {
    expect(code).toContain("import express from 'express';");
    code = code.replace("import express from 'express';", "import express from 'express4';");
  }
  // Inside the package directory, so that `import 'express-oauth-client'` resolves to this package (dist/).
  const file = path.resolve(`spec/.readme-quickstart-${expressModule}.tmp.mjs`);
  writeFileSync(file, code);
  files.push(file);
  const env = {
    ...settings,
    PORT: String(port),
    APP_URL: appUrl,
    ISSUER: printed.ISSUER!,
    API_BASE_URL: printed.API_BASE_URL!,
    REDIS_URL: redisUrl,
    TOKEN_KEY: randomBytes(32).toString('base64'),
    SESSION_SECRET: randomBytes(32).toString('base64'),
  };
  const app = start([file], env);
  return { app, provider, appUrl, file, env };
}

let redis: Redis;
beforeAll(async () => {
  redis = await connectRedis();
});
afterAll(async () => {
  for (const c of children) c.process.kill('SIGKILL');
  for (const f of files) rmSync(f, { force: true });
  await redis?.close();
});

describe('README quick start settings', () => {
  it('the .env block in the README is .env.example, and it names every setting the Quick start reads', () => {
    expect(readmeBlock('### 2. Settings', 'ini')).toBe(envExample());
    const used = new Set([...quickStart().matchAll(/process\.env\.([A-Z_]+)/g)].map((m) => m[1]!));
    expect(used.size).toBeGreaterThan(5);
    for (const name of used) expect(envExample()).toMatch(new RegExp(`(^|\\s|")${name}=`, 'm'));
  });
});

describe.each([
  ['Express 5', 'express'],
  ['Express 4', 'express4'],
] as const)('README quick start on %s', (_label, expressModule) => {
  it('runs as pasted against --provider-only: login, API call, a throwing req.oauthClient gives 401 and the app keeps serving, logout', async () => {
    const { app, appUrl } = await startQuickStart(expressModule, process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    await waitFor(app, new RegExp(`Listening on ${appUrl}`));

    const browser = new TestBrowser();
    const home = await browser.request(`${appUrl}/`);
    expect(home.body).toContain('Log in');
    const login = await browser.request(`${appUrl}/oauth/login?returnTo=/profile`);
    expect(login.status).toBe(302);
    const cb = await authorizeAtProvider(browser, login.location!, 'alice', (u) => u.startsWith(`${appUrl}/oauth/callback`));
    const done = await browser.request(cb);
    expect(done.status).toBe(302);
    expect(done.location).toBe(`${appUrl}/profile`);
    // The greeting uses the `name` claim the local provider returns with the profile scope.
    expect((await browser.request(`${appUrl}/`)).body).toContain('Hello Alice Liddell');
    const profile = await browser.request(`${appUrl}/profile`);
    expect(profile.status).toBe(200);
    expect(JSON.parse(profile.body)).toMatchObject({ sub: 'alice', message: expect.stringContaining('resource API') });

    // The token record disappears behind the session's back: req.oauthClient throws login_required inside the
    // async route. asyncHandler hands it to oauthErrorHandler (401), on Express 4 too, where an unhandled
    // rejection would end the process.
    const cookie = decodeURIComponent(browser.cookies(appUrl).get('connect.sid')!);
    const sid = /^s:(.+)\.[^.]+$/.exec(cookie)![1]!;
    expect(await redis.del(`oauth:tok:{${sid}}`)).toBe(1);
    await new Promise((r) => setTimeout(r, 2200)); // past tokenCacheMs (2 s) of the app's in-process cache
    const failed = await browser.request(`${appUrl}/profile`, { headers: { accept: 'application/json' } });
    expect(failed.status).toBe(401);
    expect(JSON.parse(failed.body)).toEqual({ error: 'login_required' });
    const still = await fetch(`${appUrl}/`);
    expect(still.status).toBe(200);
    expect(app.process.exitCode).toBeNull();
    expect(app.stderr).not.toMatch(/Unhandled|unhandledRejection/i);

    // A fresh login, then logout through the provider's end-session endpoint.
    const browser2 = new TestBrowser();
    const login2 = await browser2.request(`${appUrl}/oauth/login?returnTo=/profile`);
    const cb2 = await authorizeAtProvider(browser2, login2.location!, 'bob', (u) => u.startsWith(`${appUrl}/oauth/callback`));
    expect((await browser2.request(cb2)).status).toBe(302);
    expect((await browser2.request(`${appUrl}/profile`)).status).toBe(200);
    const logout = await browser2.request(`${appUrl}/oauth/logout`, { method: 'POST', headers: { origin: appUrl } });
    expect(logout.status).toBe(302);
    const after = await browser2.request(`${appUrl}/profile`, { headers: { accept: 'application/json' } });
    expect(after.status).toBe(401);
  });
});

describe('README quick start with Redis down', () => {
  it('stops within the bounded connect with a message naming Redis and the fix, instead of hanging', async () => {
    const deadPort = await freePort(); // nothing listens there
    const started = Date.now();
    const { app } = await startQuickStart('express', `redis://127.0.0.1:${deadPort}`);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([app.exited, new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), 12000)))]);
    clearTimeout(timer);
    expect(code).not.toBe('hung');
    expect(code).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(12000);
    expect(app.stderr).toContain(`Redis did not answer at redis://127.0.0.1:${deadPort} within 5 s: start redis-server or set REDIS_URL.`);
  });
});
