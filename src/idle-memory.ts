/**
 * Gives memory back to the system once a process has gone quiet after work: a pool child after a burst
 * of jobs, after a handful of jobs, or after connecting its slots; the master after starting its pools.
 *
 * V8 keeps the young generation at the size the busiest moment needed (a 1,000-slot child's grows to
 * 12 MiB while its slots connect and to 60 MiB during a burst) and its own memory reducer never shrinks
 * it in a process that has stopped allocating: measured with bench/e2e, a 1,000-slot daemon held the
 * same memory 25 s after registering as 1 s after. One memory-reducing full GC ("last resort": it also
 * shrinks the young generation to one page) returns it. The figures: docs/performance.md, Memory.
 *
 * Two kinds of work earn a release. A burst (RELEASE_AFTER_ACTIVE_MS of event-loop time): released after
 * the first quiet interval. Short activity, a few jobs now and then, costs almost no event-loop time but
 * still grows the heap (each job's objects touch fresh young-generation pages, the first one compiles
 * the job path): once the heap has grown RELEASE_AFTER_GROWTH_BYTES since the last release and the
 * process is quiet, it is released too, but not sooner than MIN_GROWTH_RELEASE_SPACING_MS (nor 100 GC
 * durations) after the last one, so a pool under a light steady load spends at most about 1 % of its
 * time in these collections. bench/memory (30 pools × 2 slots, 5 jobs each) measured why: without the
 * second kind no child ever released after its jobs.
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
/**
 * Heap growth (V8's resident heap, total_physical_size) since the last release that earns one without a
 * burst. Measured in a 2-slot pool child (bench/memory): its first five jobs grew it by 0.44 MiB.
 */
export const RELEASE_AFTER_GROWTH_BYTES = 256 * 1024;
/** The least time between two releases earned by growth alone. */
export const MIN_GROWTH_RELEASE_SPACING_MS = 10_000;
/** …and at least this many times the last release's own duration (a big heap's GC takes longer). */
const GROWTH_RELEASE_SPACING_PER_GC_MS = 100;

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
  /** MIN_GROWTH_RELEASE_SPACING_MS by default (tests shorten it). */
  growthSpacingMs?: number;
}

/**
 * Every `intervalMs` (unref'd: it never keeps a process alive), if the last interval was quiet: one
 * memory-reducing full GC once the event loop has worked RELEASE_AFTER_ACTIVE_MS since the last release,
 * or once the heap has grown RELEASE_AFTER_GROWTH_BYTES since then and the growth spacing has passed.
 */
export function startIdleMemoryRelease(options: IdleMemoryOptions = {}): IdleMemoryRelease {
  const gc = obtainGc();
  if (gc === null) return { stop: () => undefined };
  const growthSpacingMs = options.growthSpacingMs ?? MIN_GROWTH_RELEASE_SPACING_MS;
  // Starting up (loading modules, parsing configs, connecting) is work the heap still holds.
  let activeMs = RELEASE_AFTER_ACTIVE_MS;
  let heapAfterRelease = getHeapStatistics().total_physical_size;
  let releasedAt = -Infinity;
  let releaseMs = 0;
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const interval = performance.eventLoopUtilization(now, last);
    last = now;
    activeMs += interval.active;
    if (interval.utilization >= QUIET_UTILIZATION) return;
    const before = getHeapStatistics().total_physical_size;
    const burst = activeMs >= RELEASE_AFTER_ACTIVE_MS;
    const grown = before - heapAfterRelease >= RELEASE_AFTER_GROWTH_BYTES && performance.now() - releasedAt >= Math.max(growthSpacingMs, GROWTH_RELEASE_SPACING_PER_GC_MS * releaseMs);
    if (!burst && !grown) return;
    const start = performance.now();
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    releasedAt = performance.now();
    releaseMs = releasedAt - start;
    activeMs = 0;
    heapAfterRelease = getHeapStatistics().total_physical_size;
    // The GC's own time must not count as work.
    last = performance.eventLoopUtilization();
    options.onRelease?.(before, heapAfterRelease);
  }, options.intervalMs ?? IDLE_CHECK_INTERVAL_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
