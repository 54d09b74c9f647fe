/**
 * Gives memory back to the system once a process has gone quiet after work: a pool child after a burst
 * of jobs or after connecting its slots, the master after starting its pools.
 *
 * V8 keeps the young generation at the size the busiest moment needed (a 1,000-slot child's grows to
 * 12 MiB while its slots connect and to 60 MiB during a burst) and its own memory reducer never shrinks
 * it in a process that has stopped allocating: measured with bench/e2e, a 1,000-slot daemon held the
 * same memory 25 s after registering as 1 s after. One memory-reducing full GC ("last resort": it also
 * shrinks the young generation to one page) returns it. The figures: docs/performance.md, Memory.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { performance } from 'node:perf_hooks';

/** How often the process looks at its event loop; also the quiet period a release waits for. */
export const IDLE_CHECK_INTERVAL_MS = 1000;
/**
 * Event-loop utilisation below which an interval is quiet: an idle 1,000-slot child re-polling gearmand
 * every second (loop_timeout 1) stays between 2 and 5 %, a burst of jobs above 50 %.
 */
export const QUIET_UTILIZATION = 0.1;
/**
 * Event-loop time the process must have spent working since the last release (its start counts) before
 * the next: what it allocated meanwhile is worth a GC of a few ms, and a pool under steady light load
 * or an idle one re-polling gearmand is collected now and then, not every second.
 */
export const RELEASE_AFTER_ACTIVE_MS = 250;

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/**
 * V8's gc() without starting Node with --expose-gc: the flag makes V8 install gc() in contexts created
 * after it is set, so one new context hands it over, and the flag is cleared again at once so no other
 * context gets it. null if this V8 does not cooperate (the release is then skipped, nothing else).
 */
function obtainGc(): GcFunction | null {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as GcFunction) : null;
  } catch {
    return null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

export interface IdleMemoryRelease {
  /** Stops watching (a stopping process has no use for it). */
  stop(): void;
}

export interface IdleMemoryOptions {
  /** Called after each release with the heap's resident size before and after, in bytes. */
  onRelease?: (before: number, after: number) => void;
  intervalMs?: number;
}

/**
 * Every `intervalMs` (unref'd: it never keeps a process alive): once the event loop has worked
 * RELEASE_AFTER_ACTIVE_MS since the last release, the next quiet interval runs one memory-reducing full GC.
 */
export function startIdleMemoryRelease(options: IdleMemoryOptions = {}): IdleMemoryRelease {
  const gc = obtainGc();
  if (gc === null) return { stop: () => undefined };
  // Starting up (loading modules, parsing configs, connecting) is work the heap still holds.
  let activeMs = RELEASE_AFTER_ACTIVE_MS;
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const interval = performance.eventLoopUtilization(now, last);
    last = now;
    activeMs += interval.active;
    if (activeMs < RELEASE_AFTER_ACTIVE_MS || interval.utilization >= QUIET_UTILIZATION) return;
    const before = getHeapStatistics().total_physical_size;
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    activeMs = 0;
    // The GC's own time must not count as work.
    last = performance.eventLoopUtilization();
    options.onRelease?.(before, getHeapStatistics().total_physical_size);
  }, options.intervalMs ?? IDLE_CHECK_INTERVAL_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
