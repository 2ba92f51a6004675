import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { freePort, redisAnswers } from './global-setup.js';
import { exited, launchRedis, requireRedisServer } from './redis-server.js';

const run = promisify(execFile);

/**
 * Replicated Redis set-ups started by a test (Redis Cluster with replicas, Redis Sentinel), on free loopback
 * ports, stopped by PID (also on failure). Every wait is bounded and polls a real signal.
 */

function cliPath(): string {
  return path.join(path.dirname(requireRedisServer()), 'redis-cli');
}

/** One redis-cli command against 127.0.0.1:port, bounded; returns stdout ('' when the node does not answer). */
export async function cli(port: number, ...args: string[]): Promise<string> {
  try {
    return (await run(cliPath(), ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 5000 })).stdout;
  } catch {
    return '';
  }
}

const field = (info: string, name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it answers truthy or `timeoutMs` passes (then throws with `what`). */
export async function until<T>(what: string, check: () => Promise<T | undefined | false | null>, timeoutMs = 30000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface ClusterNode {
  port: number;
  process: ChildProcess;
}

export interface ClusterTopology {
  /** master port -> its replica ports */
  masters: Map<number, number[]>;
}

export interface ReplicatedCluster {
  nodes: ClusterNode[];
  rootNodes: Array<{ url: string }>;
  /** Current masters (with slots) and their replicas, as the live nodes see it. */
  topology(): Promise<ClusterTopology>;
  /** cluster_state:ok on every live node, 3 masters with slots, each with an in-sync replica link. */
  waitHealthy(timeoutMs?: number, opts?: { replicas?: boolean }): Promise<void>;
  /**
   * The replica's replication offset has reached its master's (everything acknowledged is on the replica).
   * `replicas`: the master's replica ports when known (saves a topology read: one redis-cli per node).
   */
  waitInSync(masterPort: number, timeoutMs?: number, replicas?: number[]): Promise<void>;
  /** `CLUSTER FAILOVER` (coordinated) sent to the replica; resolves once it is a master. */
  failover(replicaPort: number, timeoutMs?: number): Promise<void>;
  /** SIGKILL a node; resolves once the process is gone. */
  kill(port: number): Promise<void>;
  /** Waits until `replicaPort` reports role master (after a kill of its master). */
  waitPromoted(replicaPort: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** 3 masters + 3 replicas (`--cluster-replicas 1`), small `cluster-node-timeout` so a killed master is replaced in seconds. */
export async function startReplicatedCluster(opts: { nodeTimeoutMs?: number } = {}): Promise<ReplicatedCluster> {
  const bin = requireRedisServer();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'eoc-rcluster-'));
  const nodes: ClusterNode[] = [];
  const stop = async () => {
    for (const n of nodes) {
      n.process.kill('SIGCONT');
      n.process.kill('SIGKILL');
    }
    await Promise.all(nodes.map((n) => exited(n.process)));
    process.off('exit', onExit);
  };
  // If the test process goes away without its afterAll, the servers go too.
  const onExit = () => nodes.forEach((n) => n.process.kill('SIGKILL'));
  process.once('exit', onExit);
  const live = () => nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null);

  const topology = async (): Promise<ClusterTopology> => {
    for (const n of live()) {
      const out = await cli(n.port, 'cluster', 'nodes');
      if (!out) continue;
      const rows = out
        .trim()
        .split('\n')
        .map((l) => l.split(' '));
      const byId = new Map(rows.map((r) => [r[0]!, r]));
      const masters = new Map<number, number[]>();
      for (const r of rows) {
        const flags = r[2]!;
        if (flags.includes('master') && !flags.includes('fail') && r.length > 8) masters.set(Number(r[1]!.split(':')[1]!.split('@')[0]), []);
      }
      for (const r of rows) {
        if (!r[2]!.includes('slave') || r[2]!.includes('fail')) continue;
        const master = byId.get(r[3]!);
        const mport = master ? Number(master[1]!.split(':')[1]!.split('@')[0]) : NaN;
        masters.get(mport)?.push(Number(r[1]!.split(':')[1]!.split('@')[0]));
      }
      return { masters };
    }
    throw new Error('no cluster node answers');
  };

  const cluster: ReplicatedCluster = {
    nodes,
    rootNodes: [],
    topology,
    async waitHealthy(timeoutMs = 30000, { replicas = true } = {}) {
      await until(
        'a healthy cluster (state ok, 3 masters, replicas linked)',
        async () => {
          const states = await Promise.all(live().map((n) => cli(n.port, 'cluster', 'info')));
          if (!states.every((s) => s.includes('cluster_state:ok'))) return false;
          const t = await topology();
          if (t.masters.size !== 3) return false;
          if (!replicas) return true;
          for (const [, reps] of t.masters) {
            if (reps.length < 1) return false;
            for (const r of reps) if (field(await cli(r, 'info', 'replication'), 'master_link_status') !== 'up') return false;
          }
          return true;
        },
        timeoutMs,
        100,
      );
    },
    async waitInSync(masterPort, timeoutMs = 10000, replicas) {
      const reps = replicas ?? (await topology()).masters.get(masterPort) ?? [];
      if (!reps.length) throw new Error(`master ${masterPort} has no replica`);
      await until(
        `replicas of ${masterPort} in sync`,
        async () => {
          const m = Number(field(await cli(masterPort, 'info', 'replication'), 'master_repl_offset'));
          for (const r of reps) {
            const info = await cli(r, 'info', 'replication');
            if (field(info, 'master_link_status') !== 'up' || Number(field(info, 'slave_repl_offset')) < m) return false;
          }
          return true;
        },
        timeoutMs,
        20,
      );
    },
    async failover(replicaPort, timeoutMs = 20000) {
      const answer = await cli(replicaPort, 'cluster', 'failover');
      if (!answer.includes('OK')) throw new Error(`CLUSTER FAILOVER refused by ${replicaPort}: ${answer}`);
      await cluster.waitPromoted(replicaPort, timeoutMs);
    },
    async kill(port) {
      const n = nodes.find((x) => x.port === port);
      if (!n) throw new Error(`no node on ${port}`);
      n.process.kill('SIGCONT');
      n.process.kill('SIGKILL');
      await exited(n.process);
    },
    async waitPromoted(replicaPort, timeoutMs = 20000) {
      await until(
        `${replicaPort} promoted to master`,
        async () => /^role:master$/m.test(await cli(replicaPort, 'info', 'replication')),
        timeoutMs,
        25,
      );
    },
    stop,
  };

  try {
    for (let i = 0; i < 6; i++) {
      const port = await freePort();
      const args = [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        String(opts.nodeTimeoutMs ?? 1500),
      ];
      nodes.push({ port, process: await launchRedis(bin, port, args, dir) });
    }
    await run(cliPath(), ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], {
      timeout: 30000,
    });
    await cluster.waitHealthy(60000);
  } catch (err) {
    await stop();
    throw new Error(`could not start a replicated Redis Cluster (${(err as Error).message}); redis-server and redis-cli are needed`, {
      cause: err,
    });
  }
  cluster.rootNodes = nodes.map((n) => ({ url: `redis://127.0.0.1:${n.port}` }));
  return cluster;
}

export interface SentinelSetup {
  name: string;
  master: ClusterNode;
  replica: ClusterNode;
  sentinels: ClusterNode[];
  sentinelRootNodes: Array<{ host: string; port: number }>;
  /** The master's port as the sentinels report it. */
  currentMaster(): Promise<number | undefined>;
  /** How many times the first sentinel switched the master (its log's +switch-master lines). */
  switches(): number;
  /** Resolves once the node on `port` reports role slave (a demoted old master stops taking writes). */
  waitDemoted(port: number, timeoutMs?: number): Promise<void>;
  /** Every sentinel knows the master, its replica and the two other sentinels; the replica link is up. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  waitInSync(timeoutMs?: number): Promise<void>;
  /** `SENTINEL FAILOVER <name>`; resolves once the sentinels report the other node as master and it has role master. */
  failover(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/** A master, one replica and 3 sentinels (quorum 2), with short timeouts. */
export async function startSentinel(name = 'eoc'): Promise<SentinelSetup> {
  const bin = requireRedisServer();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'eoc-sentinel-'));
  const all: ClusterNode[] = [];
  const stop = async () => {
    for (const n of all) {
      n.process.kill('SIGCONT');
      n.process.kill('SIGKILL');
    }
    await Promise.all(all.map((n) => exited(n.process)));
    process.off('exit', onExit);
  };
  const onExit = () => all.forEach((n) => n.process.kill('SIGKILL'));
  process.once('exit', onExit);
  try {
    const mport = await freePort();
    const master = { port: mport, process: await launchRedis(bin, mport, [], dir) };
    all.push(master);
    const rport = await freePort();
    const replica = { port: rport, process: await launchRedis(bin, rport, ['--replicaof', '127.0.0.1', String(mport)], dir) };
    all.push(replica);
    const sentinels: ClusterNode[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = path.join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${mport} 2`,
          `logfile ${path.join(dir, `sentinel-${port}.log`)}`,
          // Not too eager: on a loaded machine a 1 s silence would start failovers nobody asked for.
          `sentinel down-after-milliseconds ${name} 3000`,
          `sentinel failover-timeout ${name} 10000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const child = spawn(bin, [conf, '--sentinel'], { stdio: 'ignore' });
      const node = { port, process: child };
      all.push(node);
      sentinels.push(node);
      await until(`sentinel on ${port}`, () => redisAnswers('127.0.0.1', port), 10000, 25);
    }
    const setup: SentinelSetup = {
      name,
      master,
      replica,
      sentinels,
      sentinelRootNodes: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
      switches() {
        try {
          return (readFileSync(path.join(dir, `sentinel-${sentinels[0]!.port}.log`), 'utf8').match(/\+switch-master/g) ?? []).length;
        } catch {
          return -1;
        }
      },
      async waitDemoted(port, timeoutMs = 30000) {
        await until(`${port} demoted to replica`, async () => /^role:slave$/m.test(await cli(port, 'info', 'replication')), timeoutMs, 25);
      },
      async currentMaster() {
        const out = await cli(sentinels[0]!.port, 'sentinel', 'get-master-addr-by-name', name);
        const port = Number(out.trim().split('\n')[1]);
        return Number.isFinite(port) ? port : undefined;
      },
      async waitHealthy(timeoutMs = 30000) {
        await until(
          'sentinels agree (master, replica, 2 other sentinels each)',
          async () => {
            const cur = await setup.currentMaster();
            if (!cur) return false;
            const other = cur === master.port ? replica.port : master.port;
            if (field(await cli(other, 'info', 'replication'), 'master_link_status') !== 'up') return false;
            for (const s of sentinels) {
              const info = await cli(s.port, 'info', 'sentinel');
              if (!new RegExp(`name=${name},status=ok,address=127.0.0.1:${cur},slaves=1,sentinels=3`).test(info)) return false;
            }
            return true;
          },
          timeoutMs,
          100,
        );
      },
      async waitInSync(timeoutMs = 10000) {
        const cur = (await setup.currentMaster())!;
        const other = cur === master.port ? replica.port : master.port;
        await until(
          'replica in sync',
          async () => {
            // The master's offset first: whatever it had acknowledged by then is on the replica once the
            // replica's offset reaches it (read the other way round, a busy master never looks in sync).
            const m = Number(field(await cli(cur, 'info', 'replication'), 'master_repl_offset'));
            return Number(field(await cli(other, 'info', 'replication'), 'slave_repl_offset')) >= m;
          },
          timeoutMs,
          20,
        );
      },
      async failover(timeoutMs = 30000) {
        const before = await setup.currentMaster();
        const target = before === master.port ? replica.port : master.port;
        // A sentinel refuses (NOGOODSLAVE) until it has fresh INFO from the replica: ask again, bounded.
        let answer = '';
        await until(
          'a sentinel to accept SENTINEL FAILOVER',
          async () => {
            for (const s of sentinels) {
              answer = await cli(s.port, 'sentinel', 'failover', name);
              if (answer.includes('OK')) return true;
            }
            return false;
          },
          timeoutMs,
          250,
        ).catch((err: Error) => {
          throw new Error(`${err.message}; last answer: ${answer.trim()}`);
        });
        await until(
          'the sentinels to switch the master',
          async () => (await setup.currentMaster()) === target && /^role:master$/m.test(await cli(target, 'info', 'replication')),
          timeoutMs,
          25,
        );
        return target;
      },
      stop,
    };
    await setup.waitHealthy(60000);
    return setup;
  } catch (err) {
    await stop();
    throw new Error(`could not start Redis Sentinel (${(err as Error).message})`, { cause: err });
  }
}
