import { inspect } from 'node:util';
import { HelperError, HelperErrorCode } from './helper-error.js';

export interface WaitForOptions {
  /** Give up after this long. Required: an unbounded wait turns a failing test into a hung one. */
  timeoutMs: number;
  /** Pause between probes. Default 25 ms. */
  intervalMs?: number;
  /** What was awaited, for the timeout error ("gearmand to list 4 workers for Sum"). */
  message: string;
}

type Probe<T> = () => Promise<T | undefined | false> | T | undefined | false;

/**
 * Polls `probe` until it returns something other than `undefined` or `false`, and returns that value
 * (so `0`, `''` and `null` count as success). A probe that throws is treated as "not yet": conditions
 * such as "gearmand accepts connections" fail by throwing until they hold. On timeout the error names
 * what was awaited, how many probes ran, the last value seen and the last error thrown (as `cause`).
 *
 * Tests use this instead of sleeping: a fixed sleep is either too short on a loaded CI machine or wastes
 * time everywhere else.
 */
export async function waitFor<T>(probe: Probe<T>, options: WaitForOptions): Promise<T> {
  const { timeoutMs, intervalMs = 25, message } = options;
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  let lastValue: unknown = undefined;
  let lastError: unknown = undefined;
  let threw = false;

  for (;;) {
    attempts++;
    const remaining = deadline - Date.now();
    try {
      // A probe that never settles (a connect with no timeout) must not stretch the wait past its deadline.
      const outcome = await withDeadline(Promise.resolve().then(probe), Math.max(remaining, 1));
      if (outcome.timedOut) {
        threw = false;
        lastValue = '<probe still pending at the deadline>';
      } else if (outcome.value !== undefined && outcome.value !== false) {
        return outcome.value as T;
      } else {
        threw = false;
        lastValue = outcome.value;
      }
    } catch (err) {
      threw = true;
      lastError = err;
    }

    if (Date.now() >= deadline) break;
    await sleep(Math.min(intervalMs, Math.max(deadline - Date.now(), 0)));
  }

  const last = threw
    ? `last probe threw: ${describeError(lastError)}`
    : `last value: ${inspect(lastValue, { depth: 4, breakLength: Infinity })}` +
      (lastError === undefined ? '' : `; an earlier probe threw: ${describeError(lastError)}`);
  throw new HelperError(
    HelperErrorCode.WAIT_TIMEOUT,
    `waitFor: timed out after ${timeoutMs} ms waiting for ${message} (${attempts} probes; ${last})`,
    lastError === undefined ? {} : { cause: lastError },
  );
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${typeof code === 'string' ? ` [${code}]` : ''}: ${err.message}`;
  }
  return inspect(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withDeadline<V>(
  promise: Promise<V>,
  ms: number,
): Promise<{ timedOut: true } | { timedOut: false; value: V }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve({ timedOut: true }), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve({ timedOut: false, value });
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
