import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, redisAnswers, redisServerBinary } from './global-setup.js';

/** A redis-server started by a test on a free port, without persistence; stopped by PID. */
export interface OwnRedis {
  port: number;
  url: string;
  process: ChildProcess;
  pause(): void;
  resume(): void;
  /** SIGKILL, then wait for the process to be gone. */
  kill(): Promise<void>;
  /** Starts a new, empty server on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function requireRedisServer(): string {
  const bin = redisServerBinary();
  if (!bin) throw new Error('These tests start their own redis-server: install it with `apt-get install -y redis-server`.');
  return bin;
}

async function launch(bin: string, port: number, args: string[] = [], cwd?: string): Promise<ChildProcess> {
  const dir = cwd ?? mkdtempSync(path.join(os.tmpdir(), 'eoc-redis-'));
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...args], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 200; i++) {
    if (await redisAnswers('127.0.0.1', port)) return child;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server did not start on port ${port}`);
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });

export async function startOwnRedis(extraArgs: string[] = []): Promise<OwnRedis> {
  const bin = requireRedisServer();
  const port = await freePort();
  const own: OwnRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    process: await launch(bin, port, extraArgs),
    pause: () => own.process.kill('SIGSTOP'),
    resume: () => own.process.kill('SIGCONT'),
    async kill() {
      own.process.kill('SIGCONT');
      own.process.kill('SIGKILL');
      await exited(own.process);
    },
    async restart() {
      own.process = await launch(bin, port, extraArgs);
    },
    async stop() {
      if (own.process.exitCode !== null || own.process.signalCode !== null) return;
      own.process.kill('SIGCONT');
      own.process.kill('SIGKILL');
      await exited(own.process);
    },
  };
  return own;
}

export { launch as launchRedis, exited };
