/**
 * Outside load: how much CPU the rest of the machine used while a measurement ran, from /proc (Linux).
 * The benchmark's own processes (this one, its children, the Redis server) are subtracted from the
 * machine's busy time; what is left is other work that competes for the cores and skews the comparison.
 * Elsewhere than Linux it reports nothing and no measurement is ever marked as disturbed.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux, for /proc/stat and /proc/<pid>/stat

function machineBusyTicks() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system (idle iowait irq softirq steal left out: interrupt time is not charged to any
  // process, so the benchmark's own network traffic would otherwise count as outside load)
  return f[0] + f[1] + f[2];
}

function processTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]); // utime, stime (fields 14 and 15)
  } catch {
    return 0; // exited
  }
}

export class OutsideLoad {
  /** @param {() => number[]} pids the benchmark's own processes, asked at each reading */
  constructor(pids) {
    this.pids = pids;
    this.available = os.platform() === 'linux';
    if (this.available) {
      try {
        machineBusyTicks();
      } catch {
        this.available = false;
      }
    }
  }

  /** A reading to pass to `since()` later. */
  mark() {
    if (!this.available) return undefined;
    const pids = this.pids();
    return { at: performance.now(), machine: machineBusyTicks(), own: new Map(pids.map((p) => [p, processTicks(p)])) };
  }

  /** Cores' worth of CPU used by other work since `mark` (0.5 = half a core on average), or NaN. */
  since(mark) {
    if (!mark) return NaN;
    const seconds = (performance.now() - mark.at) / 1000;
    if (seconds <= 0) return NaN;
    const machine = machineBusyTicks() - mark.machine;
    let own = 0;
    for (const [pid, before] of mark.own) own += Math.max(0, processTicks(pid) - before);
    return Math.max(0, machine - own) / TICKS_PER_SECOND / seconds;
  }
}
