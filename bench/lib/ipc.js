/**
 * Child side of the benchmark's IPC protocol. The orchestrator sends `{ id, cmd, args }`; the child answers
 * `{ id, ok: true, result }` or `{ id, ok: false, error }`. A child announces itself with `{ type: 'ready' }`.
 * When the orchestrator goes away (the IPC channel closes), the child runs its cleanup and exits, so no
 * process outlives a crashed or killed run.
 */

/**
 * @param {Record<string, (args: any) => unknown>} handlers command name -> handler (may be async)
 * @param {{ onExit?: () => Promise<void> | void, exitTimeoutMs?: number }} [options]
 */
export function serve(handlers, options = {}) {
  if (!process.send) throw new Error('this process must be started by bench/run.js (it needs an IPC channel)');
  let exiting = false;
  const exit = async (code) => {
    if (exiting) return;
    exiting = true;
    // Bounded: a stuck cleanup must not keep the process alive.
    const timer = setTimeout(() => process.exit(code), options.exitTimeoutMs ?? 3000);
    timer.unref();
    try {
      await options.onExit?.();
    } catch (err) {
      console.error(`cleanup failed: ${err?.message ?? err}`);
    }
    process.exit(code);
  };
  process.on('disconnect', () => void exit(0));
  process.on('SIGTERM', () => void exit(0));
  process.on('SIGINT', () => void exit(0));
  process.on('message', async (msg) => {
    if (!msg || typeof msg !== 'object' || typeof msg.cmd !== 'string') return;
    if (msg.cmd === 'exit') {
      try {
        await options.onExit?.();
        options.onExit = undefined;
        process.send?.({ id: msg.id, ok: true, result: null });
      } catch (err) {
        process.send?.({ id: msg.id, ok: false, error: String(err?.message ?? err) });
      }
      return void exit(0);
    }
    const handler = handlers[msg.cmd];
    try {
      if (!handler) throw new Error(`unknown command ${msg.cmd}`);
      const result = await handler(msg.args ?? {});
      process.send?.({ id: msg.id, ok: true, result });
    } catch (err) {
      process.send?.({ id: msg.id, ok: false, error: String(err?.stack ?? err?.message ?? err) });
    }
  });
  return {
    ready(info) {
      process.send?.({ type: 'ready', ...info });
    },
    fail(err) {
      process.send?.({ type: 'failed', error: String(err?.stack ?? err) });
      void exit(1);
    },
    exit,
  };
}

/** Parses the JSON configuration the orchestrator passes as the first argument. */
export function childConfig() {
  const raw = process.argv[2];
  if (!raw) throw new Error('missing configuration argument');
  return JSON.parse(raw);
}
