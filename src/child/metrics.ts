/**
 * Per-function job metrics and per-code HTTP counts inside one pool child (issue #7). The master asks
 * for a snapshot with each status poll and turns the sums into Prometheus metrics.
 *
 * This sits on the hot path (once per job), so recording is integer increments only: one Map lookup by
 * function name (names come from gearmand and repeat on every job), a short scan of the bucket bounds,
 * one Map lookup by status code. No strings are built and nothing is allocated per job once a function
 * and a code have been seen. Snapshots (the allocating part) happen only when the master asks.
 */
import { DURATION_BUCKETS, emptyFunctionMetrics } from '../ipc/metrics.js';
import type { ChildMetrics, FunctionMetrics } from '../ipc/metrics.js';

/** What a job ended as, for `driveshaft_jobs_total{outcome}`. */
export const JobResult = {
  COMPLETED: 'completed',
  FAILED: 'failed',
  TIMED_OUT: 'timed_out',
  REQUEUED: 'requeued',
} as const;
export type JobResult = (typeof JobResult)[keyof typeof JobResult];

/** How the HTTP side of a job ended, beside a status code: no response at all, or max_running_time. */
export const HTTP_ERROR = -1;
export const HTTP_TIMEOUT = -2;
/** The request never reached the endpoint for a reason of ours (shutdown): not an HTTP outcome. */
export const HTTP_NONE = 0;

/**
 * Distinct function names tracked. gearmand only assigns functions this pool registered, so this is a
 * guard against a bug or a misbehaving server, not a limit anyone should meet; beyond it, jobs of new
 * names are counted under OVERFLOW_FUNCTION.
 */
const MAX_FUNCTIONS = 1024;
export const OVERFLOW_FUNCTION = '(other)';
/** Same guard for status codes (three digits: at most 900 anyway). */
const MAX_CODES = 1024;


const BOUNDS = DURATION_BUCKETS;

/** Index of the bucket `seconds` falls in (upper bounds are inclusive, as Prometheus' `le`). */
export function bucketIndex(seconds: number): number {
  // Linear: most jobs are short and stop in the first few buckets; 14 comparisons at worst.
  for (let i = 0; i < BOUNDS.length; i++) if (seconds <= (BOUNDS[i] as number)) return i;
  return BOUNDS.length;
}

export class JobMetrics {
  readonly #functions = new Map<string, FunctionMetrics>();
  /** Status code (or HTTP_ERROR / HTTP_TIMEOUT) → count. */
  readonly #http = new Map<number, number>();

  /**
   * One finished job. `seconds` is its duration from assignment; `http` the endpoint's status code, or
   * HTTP_ERROR, HTTP_TIMEOUT, or HTTP_NONE to leave the HTTP counts alone.
   */
  record(functionName: string, result: JobResult, seconds: number, http: number): void {
    let counts = this.#functions.get(functionName);
    if (counts === undefined) counts = this.#add(functionName);
    switch (result) {
      case JobResult.COMPLETED:
        counts.completed++;
        break;
      case JobResult.FAILED:
        counts.failed++;
        break;
      case JobResult.TIMED_OUT:
        counts.timedOut++;
        break;
      case JobResult.REQUEUED:
        counts.requeued++;
        break;
    }
    // A clock step can make a duration negative or NaN; it must not poison the sum.
    const duration = seconds > 0 ? seconds : 0;
    (counts.buckets[bucketIndex(duration)] as number)++;
    counts.durationSum += duration;
    this.recordHttp(http);
  }

  /** One attempt's HTTP outcome that did not end its job (a transient outcome before a retry or hand-back). */
  recordHttp(http: number): void {
    if (http === HTTP_NONE) return;
    const seen = this.#http.get(http);
    if (seen !== undefined) this.#http.set(http, seen + 1);
    else if (this.#http.size < MAX_CODES) this.#http.set(http, 1);
  }

  /** Plain data for the status reply (copied: the live arrays keep changing). */
  snapshot(): ChildMetrics {
    const functions: Record<string, FunctionMetrics> = {};
    for (const [name, c] of this.#functions) {
      functions[name] = { completed: c.completed, failed: c.failed, timedOut: c.timedOut, requeued: c.requeued, buckets: c.buckets.slice(), durationSum: c.durationSum };
    }
    const http: Record<string, number> = {};
    for (const [code, count] of this.#http) http[httpLabel(code)] = count;
    return { functions, http };
  }

  #add(functionName: string): FunctionMetrics {
    const name = this.#functions.size < MAX_FUNCTIONS ? functionName : OVERFLOW_FUNCTION;
    let counts = this.#functions.get(name);
    if (counts === undefined) {
      counts = emptyFunctionMetrics();
      this.#functions.set(name, counts);
    }
    return counts;
  }
}

/** The `code` label of `driveshaft_http_responses_total`. */
export function httpLabel(code: number): string {
  if (code === HTTP_ERROR) return 'error';
  if (code === HTTP_TIMEOUT) return 'timeout';
  return String(code);
}
