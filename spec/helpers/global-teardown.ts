import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Stops the redis-server global-setup started, if it started one. */
export default async function globalTeardown(): Promise<void> {
  const file = path.join(os.tmpdir(), `eoc-redis-${process.pid}.pid`);
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, 'utf8'));
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
  rmSync(file, { force: true });
}
