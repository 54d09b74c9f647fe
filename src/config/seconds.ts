/**
 * Bounds for every "seconds" setting (--max_running_time, --loop_timeout, a pool's max_running_time),
 * shared by the command line and the jobs config so both say the same thing about the same value.
 */

/** 1 ms: Node timers cannot wait less, and a smaller value would round to a zero-length timeout. */
export const MIN_SECONDS = 0.001;

/**
 * setTimeout treats any delay above 2^31-1 ms as 1 ms, so a longer limit would fire at once instead of
 * never: the largest whole number of seconds a timer can hold.
 */
export const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/** loop_timeout drives the graceful-shutdown wait (4×), which must itself fit in a timer. */
export const MAX_LOOP_TIMEOUT_SECONDS = Math.floor(MAX_TIMER_SECONDS / 4);

/**
 * Why `value` is not an acceptable number of seconds (the text after "expected"), or null when it is.
 * Kept as one function so the CLI and the jobs config word the same rule the same way.
 */
export function secondsProblem(value: unknown, max: number = MAX_TIMER_SECONDS): string | null {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return 'a positive number of seconds';
  if (value < MIN_SECONDS) return `at least ${MIN_SECONDS} seconds (1 ms)`;
  if (value > max) return `at most ${max} seconds (the longest wait a Node.js timer can hold)`;
  return null;
}

export function secondsToMs(seconds: number): number {
  return Math.round(seconds * 1000);
}
