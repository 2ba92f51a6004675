/** Small helpers shared by several layers (no Express, no protocol, no store). */

/** Rejects with `onTimeout()` when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** An error and its `cause` chain, outermost first, at most `depth` long. */
export function causes(err: unknown, depth = 6): unknown[] {
  const chain: unknown[] = [];
  let e: unknown = err;
  for (let i = 0; i < depth && e; i++) {
    chain.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return chain;
}

/** A copy of `o` without its `undefined` members. */
export function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The message of an error for a log line, or its type when it is not an Error. */
export const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
