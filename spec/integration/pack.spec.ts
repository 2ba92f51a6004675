import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TestBrowser, authorizeAtProvider } from '../helpers/browser.js';
import { startResourceServer, type ResourceServer } from '../helpers/env.js';
import { freePort } from '../helpers/global-setup.js';
import { CLIENT_ID, CLIENT_SECRET, startProvider, type TestProvider } from '../helpers/provider.js';

/**
 * What npm users get (issue 11): the repository as a fresh clone has it (no dist/) is packed with `npm pack`
 * (its prepack builds dist/), the tarball is installed into empty apps with Express 4 and Express 5 from the npm
 * cache, and each logs in through oidc-provider from an ES module and from a CommonJS file.
 */

const repoRoot = path.resolve('.');
const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  repository: { url: string };
  homepage: string;
  bugs: { url: string };
  scripts: Record<string, string>;
};
const run = promisify(execFile);

/** The environment for npm children without the npm_* variables of an enclosing `npm test`. */
const npmEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));

const SERVER_ESM = `import { createRequire } from 'node:module';
import express from 'express';
import session from 'express-session';
import { oauth, requireAuth, asyncHandler, oauthErrorHandler, MemoryTokenStore } from 'express-oauth-client';

const { PORT, ISSUER, CLIENT_ID, CLIENT_SECRET, API_BASE_URL, TOKEN_KEY } = process.env;
const app = express();
app.use(session({ secret: 'pack-test-session-secret', resave: false, saveUninitialized: false }));
const auth = oauth({
  issuer: ISSUER, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
  redirectUri: \`http://localhost:\${PORT}/oauth/callback\`, scope: 'openid profile',
  apiBaseUrl: API_BASE_URL, tokenStore: new MemoryTokenStore(), encryptionKey: TOKEN_KEY,
});
app.use(auth);
app.get('/profile', requireAuth(), asyncHandler(async (req, res) => res.json({ user: req.oauth.user, api: (await req.oauthClient.get('/v1/me')).data })));
app.get('/api', asyncHandler(async (req, res) => res.json((await req.oauthClient.get('/v1/me')).data)));
app.use(oauthErrorHandler());
await auth.ready();
const express_ = createRequire(import.meta.url)('express/package.json').version;
app.listen(Number(PORT), () => console.log(\`listening esm express=\${express_}\`));
`;

const SERVER_CJS = `const express = require('express');
const session = require('express-session');
const { oauth, requireAuth, asyncHandler, oauthErrorHandler, MemoryTokenStore } = require('express-oauth-client');

const { PORT, ISSUER, CLIENT_ID, CLIENT_SECRET, API_BASE_URL, TOKEN_KEY } = process.env;
const app = express();
app.use(session({ secret: 'pack-test-session-secret', resave: false, saveUninitialized: false }));
const auth = oauth({
  issuer: ISSUER, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
  redirectUri: \`http://localhost:\${PORT}/oauth/callback\`, scope: 'openid profile',
  apiBaseUrl: API_BASE_URL, tokenStore: new MemoryTokenStore(), encryptionKey: TOKEN_KEY,
});
app.use(auth);
app.get('/profile', requireAuth(), asyncHandler(async (req, res) => res.json({ user: req.oauth.user, api: (await req.oauthClient.get('/v1/me')).data })));
app.get('/api', asyncHandler(async (req, res) => res.json((await req.oauthClient.get('/v1/me')).data)));
app.use(oauthErrorHandler());
auth.ready().then(() => {
  app.listen(Number(PORT), () => console.log(\`listening cjs express=\${require('express/package.json').version}\`));
});
`;

const cases = [
  { express: 4, file: 'server.mjs' },
  { express: 4, file: 'server.cjs' },
  { express: 5, file: 'server.mjs' },
  { express: 5, file: 'server.cjs' },
] as const;

let tmp: string;
let packed: { filename: string; files: Array<{ path: string }> };
const ports = new Map<string, number>();
let provider: TestProvider;
let api: ResourceServer;
const children: ChildProcess[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'eoc-pack-'));
  // A fresh clone: the tracked files (and new ones not ignored), without dist/ or node_modules.
  const clone = path.join(tmp, 'clone');
  const { stdout: list } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot });
  for (const file of list.split('\0').filter(Boolean)) {
    const from = path.join(repoRoot, file);
    if (!existsSync(from) || file.startsWith('dist/')) continue;
    mkdirSync(path.dirname(path.join(clone, file)), { recursive: true });
    copyFileSync(from, path.join(clone, file));
  }
  expect(existsSync(path.join(clone, 'dist'))).toBe(false);
  symlinkSync(realpathSync(path.join(repoRoot, 'node_modules')), path.join(clone, 'node_modules'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: clone, env: npmEnv(), maxBuffer: 16 << 20 });
  packed = (JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<typeof packed>)[0]!;
  const tarball = path.join(tmp, packed.filename);

  // Two empty apps, installed from the npm cache.
  await Promise.all(
    [4, 5].map(async (major) => {
      const dir = path.join(tmp, `app-express${major}`);
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `eoc-pack-app-${major}`, version: '1.0.0', private: true }));
      writeFileSync(path.join(dir, 'server.mjs'), SERVER_ESM);
      writeFileSync(path.join(dir, 'server.cjs'), SERVER_CJS);
      await run(
        'npm',
        ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, `express@${major}`, 'express-session@1'],
        {
          cwd: dir,
          env: npmEnv(),
          maxBuffer: 16 << 20,
        },
      );
    }),
  );

  for (const c of cases) ports.set(`${c.express}/${c.file}`, await freePort());
  provider = await startProvider({ redirectUris: [...ports.values()].map((p) => `http://localhost:${p}/oauth/callback`) });
  api = await startResourceServer(provider);
}, 120_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await api?.close();
  await provider?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function startApp(major: number, file: string, port: number): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [file], {
    cwd: path.join(tmp, `app-express${major}`),
    env: {
      PATH: process.env.PATH,
      NODE_OPTIONS: '',
      PORT: String(port),
      ISSUER: provider.issuer,
      CLIENT_ID,
      CLIENT_SECRET,
      API_BASE_URL: api.url,
      TOKEN_KEY: 'qH1o6pQ5bQe3XkqK9fN0YtQm7dZr2sVw8uLc4jGh1aE=',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      stdout += d;
      const m = /listening .*\n/.exec(stdout);
      if (m) resolve({ child, line: m[0].trim() });
    });
    child.on('exit', (code) => reject(new Error(`${file} (Express ${major}) exited with ${code}: ${stderr}`)));
  });
}

describe('npm pack', () => {
  it('the prepack script builds dist/, and the tarball holds the built package, README and LICENSE only', () => {
    expect(pkg.scripts.prepack).toBe('npm run build');
    const files = packed.files.map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/async-handler.js', 'dist/middleware.js']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => !/^(dist\/|package\.json$|README\.md$|LICENSE$)/.test(f))).toEqual([]);
  });

  it.each(cases)('installed into an empty app with Express $express, $file logs in through oidc-provider', async ({ express, file }) => {
    const port = ports.get(`${express}/${file}`)!;
    const appUrl = `http://localhost:${port}`;
    const { child, line } = await startApp(express, file, port);
    expect(line).toMatch(new RegExp(`^listening ${file.endsWith('.mjs') ? 'esm' : 'cjs'} express=${express}\\.`));

    // No login: req.oauthClient throws login_required inside an async route, asyncHandler hands it on (401).
    const anonymous = await fetch(`${appUrl}/api`, { headers: { accept: 'application/json' } });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ error: 'login_required' });

    const browser = new TestBrowser();
    const login = await browser.request(`${appUrl}/oauth/login?returnTo=/profile`);
    expect(login.status).toBe(302);
    const cb = await authorizeAtProvider(browser, login.location!, 'alice', (u) => u.startsWith(`${appUrl}/oauth/callback`));
    const done = await browser.request(cb);
    expect(done.location).toBe(`${appUrl}/profile`);
    const profile = await browser.request(`${appUrl}/profile`);
    expect(profile.status).toBe(200);
    expect(JSON.parse(profile.body)).toMatchObject({ user: { sub: 'alice', name: 'User alice' }, api: { sub: 'alice' } });
    expect(child.exitCode).toBeNull();
  });
});

describe('README on the npm page', () => {
  const repo = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

  it('package.json names the repository, homepage and issue tracker', () => {
    expect(repo).toMatch(/^https:\/\/github\.com\/[\w.-]+\/[\w.-]+$/);
    expect(pkg.homepage.startsWith(repo)).toBe(true);
    expect(pkg.bugs.url).toBe(`${repo}/issues`);
  });

  it('images and links are absolute URLs into the repository (or anchors), and name files that exist', () => {
    const targets = [...readme.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g), ...readme.matchAll(/<img[^>]*src="([^"]+)"/g)].map((m) => m[1]!);
    expect(targets.length).toBeGreaterThan(5);
    for (const target of targets) {
      if (target.startsWith('#')) continue;
      expect(target).toMatch(/^https:\/\//);
      if (!target.startsWith(`${repo}/`)) continue; // third-party links
      const m = new RegExp(`^${repo.replace(/[.]/g, '\\.')}/(?:raw|blob)/main/([^#]+)`).exec(target);
      expect(m).not.toBeNull();
      expect(existsSync(path.join(repoRoot, m![1]!))).toBe(true);
    }
    for (const image of readme.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)) expect(image[1]).toMatch(new RegExp(`^${repo}/raw/main/`));
  });
});
