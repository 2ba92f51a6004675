/**
 * Parent side: starts every benchmark process with `fork()` (IPC channel), waits for its `ready` message,
 * sends it commands with a deadline each, and stops or kills it. Every child is tracked so that the
 * orchestrator can kill all of them on exit, on a signal or on an error.
 */
import { fork } from 'node:child_process';
import { sweepPrefix } from './redis.js';

const TAIL_LINES = 80;

export class ChildProcessError extends Error {}

export class Child {
  constructor(name, proc, { verbose, onUnexpectedExit }) {
    this.name = name;
    this.proc = proc;
    this.pid = proc.pid;
    this.tail = [];
    this.pending = new Map();
    this.nextId = 1;
    this.stopping = false;
    this.exited = false;
    this.exitInfo = undefined;
    this.info = undefined;
    const capture = (stream, label) => {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          this.tail.push(`${label} ${line}`);
          if (this.tail.length > TAIL_LINES) this.tail.shift();
          if (verbose) process.stderr.write(`[${name}] ${line}\n`);
        }
      });
    };
    capture(proc.stdout, 'out');
    capture(proc.stderr, 'err');
    proc.on('message', (msg) => {
      if (!msg || typeof msg !== 'object') return;
      if (msg.id !== undefined && this.pending.has(msg.id)) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new ChildProcessError(`${name}: ${p.cmd} failed: ${msg.error}`));
      }
    });
    this.exitedPromise = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exited = true;
        this.exitInfo = { code, signal };
        for (const [, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new ChildProcessError(`${name} exited (${signal ?? code}) during ${p.cmd}\n${this.tailText()}`));
        }
        this.pending.clear();
        if (!this.stopping) onUnexpectedExit?.(this, code, signal);
        resolve();
      });
    });
  }

  tailText() {
    return this.tail.length ? this.tail.map((l) => `    ${this.name} | ${l}`).join('\n') : `    ${this.name} | (no output)`;
  }

  /** Sends a command; rejects after `timeoutMs`. */
  request(cmd, args = {}, timeoutMs = 30_000) {
    if (this.exited) return Promise.reject(new ChildProcessError(`${this.name} is not running (${cmd})`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ChildProcessError(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, cmd });
      try {
        this.proc.send({ id, cmd, args });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err);
      }
    });
  }

  /** Asks the child to clean up and exit; escalates to SIGTERM then SIGKILL. Never throws. */
  async stop(timeoutMs = 5000) {
    if (this.exited) return;
    this.stopping = true;
    const waitExit = (ms) => Promise.race([this.exitedPromise.then(() => true), new Promise((r) => setTimeout(() => r(false), ms).unref())]);
    await this.request('exit', {}, timeoutMs).catch(() => {});
    if (await waitExit(timeoutMs)) return;
    this.proc.kill('SIGTERM');
    if (await waitExit(2000)) return;
    this.proc.kill('SIGKILL');
    await waitExit(2000);
  }

  /** Immediate, synchronous kill (exit handlers). */
  kill() {
    if (this.exited) return;
    this.stopping = true;
    try {
      this.proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

export class Children {
  constructor({ verbose = false, onUnexpectedExit } = {}) {
    this.all = new Set();
    this.verbose = verbose;
    this.onUnexpectedExit = onUnexpectedExit;
  }

  /**
   * Forks `file` with `config` (JSON, first argument) and resolves once it sends `{ type: 'ready' }`.
   * @returns {Promise<Child>}
   */
  async start(name, file, config, { execArgv = [], readyTimeoutMs = 30_000, env } = {}) {
    const proc = fork(file, [JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv,
      env: { ...process.env, ...env },
    });
    const child = new Child(name, proc, { verbose: this.verbose, onUnexpectedExit: this.onUnexpectedExit });
    this.all.add(child);
    child.exitedPromise.then(() => this.all.delete(child));
    const info = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new ChildProcessError(`${name} did not become ready within ${readyTimeoutMs} ms\n${child.tailText()}`));
      }, readyTimeoutMs);
      const onMessage = (msg) => {
        if (msg?.type === 'ready') {
          cleanup();
          resolve(msg);
        } else if (msg?.type === 'failed') {
          cleanup();
          reject(new ChildProcessError(`${name} failed to start: ${msg.error}\n${child.tailText()}`));
        }
      };
      const onExit = (code, signal) => {
        cleanup();
        reject(new ChildProcessError(`${name} exited (${signal ?? code}) before it was ready\n${child.tailText()}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        proc.off('message', onMessage);
        proc.off('exit', onExit);
      };
      proc.on('message', onMessage);
      proc.on('exit', onExit);
    }).catch((err) => {
      child.kill();
      throw err;
    });
    child.info = info;
    return child;
  }

  /** Stops every child that is still running, in parallel, bounded. */
  async stopAll(timeoutMs = 5000) {
    await Promise.all([...this.all].map((c) => c.stop(timeoutMs)));
  }

  killAll() {
    for (const c of this.all) c.kill();
  }

  /**
   * Runs the body of a bench script that starts children: they are killed when this process exits, and
   * after `deadlineMs` at the latest (the script then exits with 1, saying `name` took too long); a failure
   * is printed and sets exit code 1; at the end whatever is left is killed and every Redis key under
   * `prefix` removed.
   */
  async runScript({ name, deadlineMs, prefix }, body) {
    process.on('exit', () => this.killAll());
    const hard = setTimeout(() => {
      console.error(`${name} took too long; killing its processes`);
      this.killAll();
      process.exit(1);
    }, deadlineMs);
    hard.unref();
    try {
      await body();
    } catch (err) {
      console.error(err);
      process.exitCode = 1;
    } finally {
      this.killAll();
      await sweepPrefix(prefix);
    }
  }
}
