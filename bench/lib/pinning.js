/**
 * CPU pinning (Linux, `taskset`): the app under load gets a core of its own, the load generator, the
 * provider, the API and this process share the others. Without it the app and autocannon fight over the
 * same cores and a single 2 s measurement moves by about +/-10 %; the A/A check showed it.
 * Elsewhere (no taskset, one core) nothing is pinned and the run says so.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

export function pinningPlan() {
  const cores = os.cpus().length;
  if (os.platform() !== 'linux' || cores < 2) return undefined;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  const appCpu = cores - 1;
  return { appCpus: String(appCpu), otherCpus: cores === 2 ? '0' : `0-${cores - 2}` };
}

/** The CPU list `pid` may run on now (`taskset -c -p`), or undefined. */
export function affinityOf(pid) {
  try {
    const out = execFileSync('taskset', ['-c', '-p', String(pid)], { encoding: 'utf8', timeout: 5000 });
    return /:\s*(\S+)\s*$/.exec(out.trim())?.[1];
  } catch {
    return undefined;
  }
}

/** Sets the CPU affinity of every thread of `pid` (`taskset -a -p -c`). Returns false when it failed. */
export function pin(pid, cpus) {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}
