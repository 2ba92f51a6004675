import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { TestEnv } from './env.js';
import { CLIENT_ID, CLIENT_SECRET } from './provider.js';
import { SESSION_SECRET } from './env.js';

export interface ChildApp {
  url: string;
  process: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts an app instance in its own process with the same stores and keys as `env`'s app. */
export async function startChild(
  env: TestEnv,
  extra: { httpTimeout?: number; storeTimeout?: number; apiUrl?: string; oauth?: Record<string, unknown> } = {},
): Promise<ChildApp> {
  const config = {
    issuer: env.provider.issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUri: env.options.redirectUri,
    scope: env.options.scope,
    apiUrl: env.api.url,
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    prefix: env.prefix,
    encryptionKey: env.options.encryptionKey,
    sessionSecret: SESSION_SECRET,
    ...extra,
  };
  const child = spawn(process.execPath, [path.resolve('spec/helpers/child-app.mjs')], {
    env: { ...process.env, CHILD_CONFIG: JSON.stringify(config), NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`child app did not start: ${stderr.slice(0, 500)}`)), 15000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child app exited (${code}): ${stderr.slice(0, 1000)}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    process: child,
    kill: (signal = 'SIGTERM') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}
