/**
 * A child's job metrics (per function, and HTTP outcomes by code) as they cross IPC, and the arithmetic
 * on them: the child's empty shapes, the master's sums over children and restarts (so the Prometheus
 * counters never go back when a child is restarted or a pool is removed), and the master's check of
 * what a child reported.
 */

/**
 * Upper bounds, in seconds, of the job duration histogram's buckets (+Inf is implicit). Part of the IPC
 * contract: a child's bucket counts mean nothing without these bounds, and the master sums counts
 * index by index.
 */
export const DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Buckets per function: one per bound, and the last for durations above every bound. */
export const BUCKET_COUNT = DURATION_BUCKETS.length + 1;

/** One function's job metrics in one child, cumulative since the child started. */
export interface FunctionMetrics {
  completed: number;
  /** Failed for any reason but max_running_time (those are timedOut). */
  failed: number;
  timedOut: number;
  /** gearman_ret 14 answered by dropping the connection. */
  requeued: number;
  /**
   * Jobs per duration bucket, NOT cumulative: index i counts durations in (DURATION_BUCKETS[i-1],
   * DURATION_BUCKETS[i]]; the last index (DURATION_BUCKETS.length) counts those above the last bound.
   */
  buckets: number[];
  /** Sum of every job's duration, in seconds. */
  durationSum: number;
}

export interface ChildMetrics {
  /** By function name. */
  functions: Record<string, FunctionMetrics>;
  /** HTTP outcomes by code: the status ("200", "500"…), "error" (no response) or "timeout". */
  http: Record<string, number>;
}

/** Bounds on what one child may report: its own guards are 1024 functions and 1024 codes. */
const MAX_REPORTED_FUNCTIONS = 4096;
const MAX_REPORTED_CODES = 4096;

export function emptyMetrics(): ChildMetrics {
  return { functions: {}, http: {} };
}

export function emptyFunctionMetrics(): FunctionMetrics {
  return { completed: 0, failed: 0, timedOut: 0, requeued: 0, buckets: new Array<number>(BUCKET_COUNT).fill(0), durationSum: 0 };
}

/** a + b, as a new object (neither argument is changed). */
export function addMetrics(a: ChildMetrics, b: ChildMetrics): ChildMetrics {
  const functions: Record<string, FunctionMetrics> = {};
  for (const source of [a.functions, b.functions]) {
    for (const [name, f] of Object.entries(source)) {
      const sum = functions[name] ?? emptyFunctionMetrics();
      sum.completed += f.completed;
      sum.failed += f.failed;
      sum.timedOut += f.timedOut;
      sum.requeued += f.requeued;
      sum.durationSum += f.durationSum;
      for (let i = 0; i < BUCKET_COUNT; i++) (sum.buckets[i] as number) += f.buckets[i] ?? 0;
      functions[name] = sum;
    }
  }
  const http: Record<string, number> = { ...a.http };
  for (const [code, count] of Object.entries(b.http)) http[code] = (http[code] ?? 0) + count;
  return { functions, http };
}

/** A count a child reported: a finite number >= 0, else 0 (a NaN would poison every later sum). */
export function reportedCount(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0;
}

/**
 * Metrics from a child are ours, but they crossed a process boundary: anything malformed becomes zero
 * rather than a NaN that would poison every later sum, and a missing object (an older child) is empty.
 */
export function sanitizeMetrics(metrics: unknown): ChildMetrics {
  const out = emptyMetrics();
  if (typeof metrics !== 'object' || metrics === null) return out;
  const { functions, http } = metrics as { functions?: unknown; http?: unknown };
  if (typeof functions === 'object' && functions !== null) {
    for (const [name, raw] of Object.entries(functions).slice(0, MAX_REPORTED_FUNCTIONS)) {
      if (typeof raw !== 'object' || raw === null) continue;
      const f = raw as Partial<Record<keyof FunctionMetrics, unknown>>;
      const buckets = Array.isArray(f.buckets) && f.buckets.length === BUCKET_COUNT ? f.buckets.map(reportedCount) : new Array<number>(BUCKET_COUNT).fill(0);
      out.functions[name] = {
        completed: reportedCount(f.completed),
        failed: reportedCount(f.failed),
        timedOut: reportedCount(f.timedOut),
        requeued: reportedCount(f.requeued),
        buckets,
        durationSum: reportedCount(f.durationSum),
      };
    }
  }
  if (typeof http === 'object' && http !== null) {
    for (const [code, value] of Object.entries(http).slice(0, MAX_REPORTED_CODES)) out.http[code] = reportedCount(value);
  }
  return out;
}
