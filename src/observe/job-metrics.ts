/**
 * Sums of the children's job metrics (src/ipc/messages.ts ChildMetrics) in the master. The pools' totals
 * (pool-totals.ts) keep the sum over every child a pool had, the way they keep the counters, so the
 * Prometheus counters never go back when a child is restarted or a pool is removed.
 */
import { DURATION_BUCKETS } from '../ipc/messages.js';
import type { ChildMetrics, FunctionMetrics } from '../ipc/messages.js';

const BUCKET_COUNT = DURATION_BUCKETS.length + 1;
/** Bounds on what one child may report: its own guards are 1024 functions and 1024 codes. */
const MAX_FUNCTIONS = 4096;
const MAX_CODES = 4096;

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

function count(value: unknown): number {
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
    for (const [name, raw] of Object.entries(functions).slice(0, MAX_FUNCTIONS)) {
      if (typeof raw !== 'object' || raw === null) continue;
      const f = raw as Partial<Record<keyof FunctionMetrics, unknown>>;
      const buckets = Array.isArray(f.buckets) && f.buckets.length === BUCKET_COUNT ? f.buckets.map(count) : new Array<number>(BUCKET_COUNT).fill(0);
      out.functions[name] = {
        completed: count(f.completed),
        failed: count(f.failed),
        timedOut: count(f.timedOut),
        requeued: count(f.requeued),
        buckets,
        durationSum: count(f.durationSum),
      };
    }
  }
  if (typeof http === 'object' && http !== null) {
    for (const [code, value] of Object.entries(http).slice(0, MAX_CODES)) out.http[code] = count(value);
  }
  return out;
}
