import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { freePort } from './global-setup.js';
import { exited, launchRedis, requireRedisServer } from './redis-server.js';

const run = promisify(execFile);

/** A local 3-master Redis Cluster on free ports, started by the test and stopped by PID. */
export interface OwnCluster {
  ports: number[];
  rootNodes: Array<{ url: string }>;
  stop(): Promise<void>;
}

export async function startCluster(): Promise<OwnCluster> {
  const bin = requireRedisServer();
  const cli = path.join(path.dirname(bin), 'redis-cli');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'eoc-cluster-'));
  const ports: number[] = [];
  const processes: ChildProcess[] = [];
  const stop = async () => {
    for (const p of processes) p.kill('SIGKILL');
    await Promise.all(processes.map(exited));
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      ports.push(port);
      processes.push(
        await launchRedis(
          bin,
          port,
          ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000'],
          dir,
        ),
      );
    }
    await run(cli, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30000 });
    for (let i = 0; i < 200; i++) {
      const states = await Promise.all(ports.map((p) => run(cli, ['-p', String(p), 'cluster', 'info']).then((r) => r.stdout)));
      if (states.every((s) => s.includes('cluster_state:ok'))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await stop();
    throw new Error(
      `could not start a local Redis Cluster (${(err as Error).message}); redis-server and redis-cli are needed: apt-get install -y redis-server`,
      { cause: err },
    );
  }
  return { ports, rootNodes: ports.map((p) => ({ url: `redis://127.0.0.1:${p}` })), stop };
}
