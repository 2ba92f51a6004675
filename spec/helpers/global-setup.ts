import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Answers true when something speaks Redis at host:port (PING -> +PONG) within 1 s. */
export function redisAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export function redisServerBinary(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes sure the tests have a Redis: REDIS_URL if set, else 127.0.0.1:6379, else a redis-server started
 * here on a free port (stopped by global-teardown). Fails with one line when none can be had.
 */
export default async function globalSetup(): Promise<void> {
  const configured = process.env.REDIS_URL;
  const url = new URL(configured ?? 'redis://127.0.0.1:6379');
  if (await redisAnswers(url.hostname, Number(url.port || 6379))) {
    process.env.REDIS_URL = url.href;
    return;
  }
  if (configured)
    throw new Error(
      `Nothing answers at REDIS_URL=${configured}: start Redis there, or unset REDIS_URL to let the tests start their own redis-server.`,
    );
  const bin = redisServerBinary();
  if (!bin) {
    throw new Error(
      'No Redis at 127.0.0.1:6379 and no redis-server installed: run `apt-get install -y redis-server` (or set REDIS_URL=redis://host:port).',
    );
  }
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'eoc-redis-'));
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
    detached: true,
  });
  child.unref();
  for (let i = 0; i < 100 && !(await redisAnswers('127.0.0.1', port)); i++) await new Promise((r) => setTimeout(r, 50));
  if (!(await redisAnswers('127.0.0.1', port))) throw new Error(`redis-server (${bin}) did not start on port ${port}.`);
  writeFileSync(path.join(os.tmpdir(), `eoc-redis-${process.pid}.pid`), String(child.pid));
  console.log(`\n[express-oauth-client tests] nothing answered on 127.0.0.1:6379: started ${bin} on port ${port} for this run.`);
  process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
}
