/**
 * A child's job counters: what each one counts, the one list of their names, and the arithmetic the
 * master does on them (sums over a pool's children, over restarts, over pools).
 */

export interface ChildCounters {
  jobs_completed: number;
  jobs_failed: number;
  jobs_timed_out: number;
  /** gearman_ret 14: connection dropped so gearmand re-queues. */
  jobs_requeued: number;
  /** Transport failures and non-200 / invalid responses. */
  http_errors: number;
  /** Transient outcomes answered by POSTing the same job again after a backoff. */
  jobs_retried: number;
  /** Jobs given back to gearmand unfailed (breaker open, stop while waiting to retry). */
  jobs_handed_back: number;
  /** Jobs written to the pool's dead-letter file before their WORK_FAIL. */
  jobs_dead_lettered: number;
  /**
   * Jobs a gearmand assigned after the slot had given up waiting for its GRAB's answer, given back
   * unstarted (the socket dropped, gearmand re-queues them) because the slot was busy by then.
   */
  jobs_returned: number;
}

/**
 * Every ChildCounters key, in the order the status port prints them: the one list of the counters.
 * `satisfies` rejects a name that is no counter; zeroCounters rejects a counter missing here.
 */
export const COUNTER_NAMES = [
  'jobs_completed',
  'jobs_failed',
  'jobs_timed_out',
  'jobs_requeued',
  'http_errors',
  'jobs_retried',
  'jobs_handed_back',
  'jobs_dead_lettered',
  'jobs_returned',
] as const satisfies ReadonlyArray<keyof ChildCounters>;
export type CounterName = (typeof COUNTER_NAMES)[number];

export function zeroCounters(): ChildCounters {
  const zero = {} as Record<CounterName, number>;
  for (const name of COUNTER_NAMES) zero[name] = 0;
  return zero;
}

/** a + b, as a new object. */
export function addCounters(a: ChildCounters, b: ChildCounters): ChildCounters {
  const sum = zeroCounters();
  for (const name of COUNTER_NAMES) sum[name] = a[name] + b[name];
  return sum;
}

/**
 * Counters a child reported: ours, but they crossed a process boundary, so anything that is not a
 * finite number becomes zero rather than a NaN that would poison every later sum.
 */
export function sanitizeCounters(counters: unknown): ChildCounters {
  const out = zeroCounters();
  if (typeof counters !== 'object' || counters === null) return out;
  const reported = counters as Partial<Record<CounterName, unknown>>;
  for (const name of COUNTER_NAMES) {
    const value = reported[name];
    out[name] = typeof value === 'number' && Number.isFinite(value) ? value : 0;
  }
  return out;
}
