/**
 * Adaptive concurrency (docs/flow-control.md, Adaptive concurrency): how many of a pool's slots may hold
 * a job, found from the endpoint's latency and transient failures, between a floor (`concurrency.min`)
 * and a ceiling (worker_count).
 *
 * The controller compares the median latency of each window of attempts with the endpoint's no-load
 * latency (its **baseline**), as Envoy's adaptive concurrency filter does with its minRTT, and moves
 * the limit like TCP congestion control:
 * - A window whose median is over TOLERANCE × baseline, or with DROP_SHARE transient outcomes, is
 *   overloaded: the limit is cut by the latency gradient (baseline × TOLERANCE / median), at least
 *   CUT_MIN and at most CUT_MAX, and by one slot at least. The level that overloaded is remembered as the
 *   knee.
 * - A good window that used the whole limit raises it: by a quarter (at least one slot) until the first
 *   overload, then halfway back to the slot below the knee (at least one). The knee itself is probed
 *   only after PROBE_WAIT_MIN good windows at the slot below it, twice as many after each failed probe
 *   (up to PROBE_WAIT_MAX): against an endpoint whose latency doubles one request past its knee, the
 *   pool spends almost all its time just below it. A probe that stays good forgets the knee.
 * - The baseline is the median of a window measured at half the limit (at least the floor): the first
 *   window after the start, then one every BASELINE_REFRESH_MS, and at once after FLOOR_WINDOWS
 *   overloaded windows at the floor (the endpoint got slower whatever the pool does). A baseline measured
 *   below the knee never drifts up with the pool's own load, which a moving average of recent
 *   latencies (Gradient2's) does against an endpoint that queues (PHP-FPM's listen backlog).
 *
 * A window is at least MIN_WINDOW attempts and at least the limit's worth, counting only attempts that
 * started after the limit last changed, so each verdict is about the limit it judges. Per attempt the
 * cost is a comparison and a store into a preallocated array; the median (quickselect) runs once per
 * window. No timer: nothing changes while no attempt ends.
 */

/** Latency over this multiple of the baseline is overload (Envoy's default buffer of 25 %). */
export const TOLERANCE = 1.25;
/** Latency over this multiple of the baseline is overload at once; between TOLERANCE and it, only two windows in a row. */
export const SURE_TOLERANCE = 1.5;
/** Fewest attempts in a window: a median of fewer swings with every slow request. */
export const MIN_WINDOW = 20;
/** Attempts of a baseline measurement: the yardstick of every later window, so measured longer. */
export const BASELINE_WINDOW = 40;
/** A window with this share of transient outcomes (timeouts, refusals, retryable statuses) is overloaded. */
export const DROP_SHARE = 0.1;
/** The deepest cut of one window (Gradient2's and Envoy's floor for the gradient). */
export const CUT_MIN = 0.5;
/** The mildest cut (Netflix AIMD's backoff ratio). */
export const CUT_MAX = 0.9;
/**
 * The wait at the slot below the knee before the knee is probed again, in baseline latencies (round
 * trips); doubled after each failed probe, stretched by how slow it was, and never over PROBE_WAIT_CAP_MS,
 * so an endpoint that got its capacity back is found within seconds.
 */
export const PROBE_WAIT_MIN = 8;
export const PROBE_WAIT_MAX = 128;
export const PROBE_WAIT_CAP_MS = 10_000;
/** The most a failed probe's slowness (its median over the baseline) stretches the wait for the next. */
export const PROBE_COST_MAX = 16;
/** How often the baseline is measured again (Envoy's minRTT interval). */
export const BASELINE_REFRESH_MS = 60_000;
/** Overloaded windows in a row at the floor before the baseline is taken from them. */
export const FLOOR_WINDOWS = 3;

export class AdaptiveLimit {
  #floor: number;
  #ceiling: number;
  /** Slots that may hold a job (an integer). */
  #limit: number;
  /** The no-load latency, ms; 0 until the first window measured it. */
  #baseline = 0;
  /** The lowest limit that overloaded since the last good probe; Infinity while none did. */
  #knee = Infinity;
  #everOverloaded = false;
  /** The wait before the knee is probed again, in baseline latencies. */
  #probeRtts = PROBE_WAIT_MIN;
  /** How much slower than the baseline the last failed probe was. */
  #probeCost = 1;
  /** When the knee may be probed again (clock). */
  #probeAt = 0;
  #floorOverloads = 0;
  /** The last window was mildly slow (over TOLERANCE, under SURE_TOLERANCE): one more decides. */
  #slowBefore = false;
  /** The window being measured is the baseline's, at half the limit; the limit to go back to after it. */
  #measuring = true;
  #restoreTo = 0;
  #nextRefreshAt = 0;
  /** Raised, and not yet reached by the slots holding permits. */
  #rising = false;
  /** When the current limit was set (a raised one: reached): attempts started before belong to another. */
  #since: number;
  #target = MIN_WINDOW;
  #latencies: Float64Array;
  #answered = 0;
  #drops = 0;
  /** The most slots that held a permit at once during the window (a window that never filled the limit says nothing about more). */
  #peak = 0;

  readonly #clock: () => number;

  /** `clock`: milliseconds, the clock attempts' start times are read on (performance.now()). */
  constructor(floor: number, ceiling: number, clock: () => number = () => performance.now()) {
    this.#clock = clock;
    this.#ceiling = Math.max(1, ceiling);
    this.#floor = Math.min(Math.max(1, floor), this.#ceiling);
    this.#limit = this.#floor;
    this.#since = clock();
    this.#latencies = new Float64Array(Math.max(BASELINE_WINDOW, this.#ceiling));
    this.#startWindow();
  }

  /** Slots that may hold a job now. */
  get limit(): number {
    return this.#limit;
  }

  /** The no-load latency the controller compares with, ms; null before it measured one. */
  get baselineMs(): number | null {
    return this.#baseline === 0 ? null : this.#baseline;
  }

  get floor(): number {
    return this.#floor;
  }

  /** A reload changed `concurrency.min` or worker_count: the limit stays within them, the knowledge stays. */
  setBounds(floor: number, ceiling: number): void {
    this.#ceiling = Math.max(1, ceiling);
    this.#floor = Math.min(Math.max(1, floor), this.#ceiling);
    if (this.#latencies.length < Math.max(BASELINE_WINDOW, this.#ceiling)) {
      const larger = new Float64Array(Math.max(BASELINE_WINDOW, this.#ceiling));
      larger.set(this.#latencies.subarray(0, this.#answered));
      this.#latencies = larger;
    }
    this.#restoreTo = Math.min(Math.max(this.#restoreTo, this.#floor), this.#ceiling);
    this.#setLimit(Math.min(Math.max(this.#limit, this.#floor), this.#ceiling), this.#clock());
  }

  /** `inUse` slots hold a permit now (called when one is taken). */
  inUse(inUse: number): void {
    if (inUse > this.#peak) this.#peak = inUse;
    if (this.#rising && inUse >= this.#limit) {
      // The raised limit is reached only now: attempts started before ran with fewer beside them.
      this.#rising = false;
      this.#since = this.#clock();
      this.#startWindow();
    }
  }

  /**
   * An attempt that started at `startedAt` (on the clock) ended now: `ok` false for a transient
   * outcome. Returns true when the limit rose (waiting slots may be admitted).
   */
  attemptEnded(startedAt: number, ok: boolean): boolean {
    if (startedAt <= this.#since) return false;
    const now = this.#clock();
    if (ok) this.#latencies[this.#answered++] = now - startedAt;
    else this.#drops++;
    if (this.#answered + this.#drops < this.#target) return false;
    const before = this.#limit;
    this.#decide(now);
    return this.#limit > before;
  }

  #decide(now: number): void {
    const answered = this.#answered;
    const median = answered === 0 ? Infinity : medianOf(this.#latencies, answered);
    const total = answered + this.#drops;
    if (this.#measuring) {
      this.#measuring = false;
      if (answered > 0) this.#baseline = median;
      this.#nextRefreshAt = now + BASELINE_REFRESH_MS;
      // The first measurement is at the floor, where the pool starts; a refresh goes back where it was.
      this.#setLimit(this.#restoreTo === 0 ? this.#grown(this.#limit, now) : this.#restoreTo, now);
      return;
    }
    const threshold = this.#baseline * TOLERANCE;
    const slow = median > threshold;
    // Mildly slow once is as likely noise as load: the next window decides. Clearly slow is load.
    const overloaded = this.#drops >= DROP_SHARE * total || median > this.#baseline * SURE_TOLERANCE || (slow && this.#slowBefore);
    this.#slowBefore = slow && !overloaded;
    let next = this.#limit;
    if (this.#slowBefore) {
      // Held: neither cut nor grown until the next window.
    } else if (overloaded) {
      this.#everOverloaded = true;
      if (this.#limit === this.#knee) {
        // A failed probe: back to the slot below, which has just been good for a while.
        this.#probeRtts = Math.min(PROBE_WAIT_MAX, this.#probeRtts * 2);
        // A probe costs what its latency says: one twice as slow waits twice as long for the next.
        this.#probeCost = Math.min(PROBE_COST_MAX, Math.max(1, median / this.#baseline));
        next = Math.max(this.#floor, this.#limit - 1);
      } else {
        this.#knee = Math.min(this.#knee, this.#limit);
        const gradient = median === Infinity ? CUT_MAX : Math.min(CUT_MAX, Math.max(CUT_MIN, threshold / median));
        next = Math.max(this.#floor, Math.min(this.#limit - 1, Math.floor(this.#limit * gradient)));
      }
      // The knee is probed again only after a while at the slot below it.
      this.#probeAt = now + Math.min(PROBE_WAIT_CAP_MS, this.#probeRtts * this.#probeCost * this.#baseline);
      if (this.#limit === this.#floor && ++this.#floorOverloads >= FLOOR_WINDOWS && answered > 0) {
        // As low as the pool may go and still slow: the endpoint is slower now, whatever the pool does.
        this.#baseline = median;
        this.#knee = Infinity;
        this.#everOverloaded = false;
        this.#floorOverloads = 0;
      }
    } else {
      this.#floorOverloads = 0;
      if (this.#limit >= this.#knee) {
        // The probe at the knee held: the knee was a passing slowdown, or the endpoint grew.
        this.#knee = Infinity;
        this.#probeRtts = PROBE_WAIT_MIN;
        this.#probeCost = 1;
      }
      if (this.#peak >= this.#limit) next = this.#grown(this.#limit, now);
    }
    if (!overloaded && now >= this.#nextRefreshAt && next > this.#floor) {
      this.#measuring = true;
      this.#restoreTo = next;
      next = Math.max(this.#floor, Math.floor(next / 2));
    }
    this.#setLimit(next, now);
  }

  /** The limit after a good window that used all of it. */
  #grown(limit: number, now: number): number {
    if (this.#knee === Infinity) {
      const step = this.#everOverloaded ? 1 : Math.max(1, Math.floor(limit / 4));
      return Math.min(this.#ceiling, limit + step);
    }
    const below = this.#knee - 1;
    if (limit < below) return Math.min(this.#ceiling, limit + Math.max(1, Math.floor((below - limit) / 2)));
    return now < this.#probeAt ? limit : Math.min(this.#ceiling, this.#knee);
  }

  #setLimit(limit: number, now: number): void {
    if (limit !== this.#limit) {
      this.#rising = limit > this.#limit;
      this.#limit = limit;
      this.#since = now;
    }
    this.#startWindow();
  }

  #startWindow(): void {
    this.#target = Math.max(this.#measuring ? BASELINE_WINDOW : MIN_WINDOW, this.#limit);
    this.#answered = 0;
    this.#drops = 0;
    this.#peak = 0;
  }
}

/** The median of the first `n` values (reordered in place: the window is over). Quickselect, O(n). */
export function medianOf(values: Float64Array, n: number): number {
  const k = n >> 1;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >> 1] as number;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((values[i] as number) < pivot) i++;
      while ((values[j] as number) > pivot) j--;
      if (i <= j) {
        const t = values[i] as number;
        values[i] = values[j] as number;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return values[k] as number;
}
