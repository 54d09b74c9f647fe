/**
 * Adaptive concurrency (docs/flow-control.md, Adaptive concurrency): how many of a pool's slots may hold
 * a job, found from the endpoint's latency and transient failures, between a floor (`concurrency.min`)
 * and a ceiling (worker_count).
 *
 * Each window's latency is compared with the endpoint's no-load latency, its **baseline** (as Envoy's
 * adaptive concurrency filter compares with its minRTT), and the limit moves as in TCP congestion
 * control:
 * - A window over TOLERANCE × baseline (over SURE_TOLERANCE at once, else two windows in a row), or with
 *   DROP_SHARE transient outcomes, is overloaded: the limit is cut by CUT_MAX (AIMD's multiplicative
 *   decrease), or by the latency gradient (tolerated / measured, at least CUT_MIN) when the window is
 *   over SEVERE × the tolerated latency; always by one slot at least. The level that overloaded is the
 *   knee.
 * - A good window that used the whole limit raises it: by a quarter (at least one) until the first
 *   overload, by one after; halfway back to the slot below a known knee. The knee itself is probed only
 *   after a wait at the slot below it (PROBE_WAIT_*), doubled and stretched by the probe's slowness after
 *   each failed probe: against an endpoint whose latency doubles one request past its knee, the pool
 *   spends almost all its time just below it. A probe fails if it is slow, or if it does not raise the
 *   jobs per second (limit / latency, Little's law) by GAIN_SHARE of what its extra slot would at
 *   unchanged latency: past the knee a slot buys only latency. A failed probe goes back one slot; one
 *   that holds moves the knee up (one slot, twice as far for each probe in a row that held) and the
 *   wait back to its shortest, so an endpoint that grew is climbed quickly.
 * - The baseline is measured at half the limit (at least the floor): the first window after the start,
 *   again every BASELINE_REFRESH_MS and after any window clearly faster than it, and taken from the
 *   floor's windows after FLOOR_WINDOWS overloaded ones there (the endpoint is slower whatever the pool
 *   does). Measured below the knee it does not drift up with the pool's own load, as a moving average of
 *   recent latencies (Gradient2's) does against an endpoint that queues (PHP-FPM's listen backlog).
 *
 * A window is the cohort of the first attempts started after the limit last changed (a raised limit:
 * after it was reached), at least MIN_WINDOW and the limit's worth, judged once all of them ended, so
 * slow attempts weigh as much as fast ones. Its latency is a capped mean: each attempt counts for at
 * most CAP × the tolerated latency, so a few outliers (a slow job among fast ones) cannot fake an
 * overload, while a share of requests slowed by load moves the mean where a median would not. Per
 * attempt the cost is a few comparisons and additions; no timer: nothing changes while no attempt ends.
 */

/** Latency over this multiple of the baseline is overload (Envoy's default buffer of 25 %). */
export const TOLERANCE = 1.25;
/** Latency over this multiple of the baseline is overload at once; between TOLERANCE and it, two windows in a row. */
export const SURE_TOLERANCE = 1.5;
/** A window over this multiple of the tolerated latency is a collapse: cut by the gradient. */
export const SEVERE = 3;
/** One attempt counts for at most this multiple of the tolerated latency. */
export const CAP = 4;
/** Fewest attempts in a window: fewer swing with every slow request. */
export const MIN_WINDOW = 20;
/** Attempts of a baseline measurement: the yardstick of every later window, so measured longer. */
export const BASELINE_WINDOW = 40;
/** A window with this share of transient outcomes (timeouts, refusals, retryable statuses) is overloaded. */
export const DROP_SHARE = 0.1;
/** The deepest cut of one window (Gradient2's and Envoy's floor for the gradient). */
export const CUT_MIN = 0.5;
/** The cut for an overload or transient outcomes (Netflix AIMD's backoff ratio). */
export const CUT_MAX = 0.9;
/**
 * The wait at the slot below the knee before the knee is probed again, in baseline latencies (round
 * trips); doubled after each failed probe, stretched by how slow it was (at most PROBE_COST_MAX), and
 * never over PROBE_WAIT_CAP_MS, so an endpoint that got its capacity back is found within seconds.
 */
export const PROBE_WAIT_MIN = 8;
export const PROBE_WAIT_MAX = 128;
export const PROBE_COST_MAX = 16;
export const PROBE_WAIT_CAP_MS = 10_000;
/** A probe holds only if it raises jobs per second by this share of what its extra slots would at unchanged latency. */
export const GAIN_SHARE = 0.5;
/** How often the baseline is measured again (Envoy's minRTT interval). */
export const BASELINE_REFRESH_MS = 60_000;
/** Overloaded windows in a row at the floor before the baseline is taken from them. */
export const FLOOR_WINDOWS = 3;
/** A window's attempts started later that may end before its last ones do, times the window, before it is judged without them. */
const STRAGGLER_WINDOWS = 4;

export class AdaptiveLimit {
  readonly #clock: () => number;
  #floor: number;
  #ceiling: number;
  /** Slots that may hold a job (an integer). */
  #limit: number;
  /** The no-load latency, ms; 0 until the first window measured it. */
  #baseline = 0;
  /** The lowest limit that overloaded since the last probe that held; Infinity while none did. */
  #knee = Infinity;
  #everOverloaded = false;
  /** The wait before the knee is probed again, in baseline latencies. */
  #probeRtts = PROBE_WAIT_MIN;
  /** How much slower than the baseline the last failed probe was. */
  #probeCost = 1;
  /** The last good window below the knee: its limit (0: none yet) and latency, the probes' yardstick. */
  #goodLimit = 0;
  #goodLatency = 0;
  /** How far the knee moves up after the next probe that holds: 1, doubled per probe held in a row. */
  #climb = 1;
  /** When the knee may be probed again (clock). */
  #probeAt = 0;
  #floorOverloads = 0;
  /** The last window was mildly slow (over TOLERANCE, under SURE_TOLERANCE): the next one decides. */
  #slowBefore = false;
  /** The window being measured is the baseline's, at half the limit; the limit to go back to after it. */
  #measuring = true;
  #restoreTo = 0;
  #nextRefreshAt = 0;
  /** Raised, and not yet reached by the slots holding permits. */
  #rising = false;
  /** When the current limit was set (a raised one: reached): attempts started before belong to another. */
  #since: number;
  #target = BASELINE_WINDOW;
  /** Attempts of the window's cohort started, answered and ended transient. */
  #started = 0;
  #answered = 0;
  #drops = 0;
  /** When the cohort's last attempt started (Infinity until it did). */
  #cohortEnd = Infinity;
  /** Attempts started after the cohort that ended before it did. */
  #later = 0;
  /** Judging windows: the capped latencies' sum, and the cap. */
  #sum = 0;
  #cap = Infinity;
  /** Baseline windows: the latencies themselves (their median sets their cap). */
  #latencies = new Float64Array(BASELINE_WINDOW);
  /** The most slots that held a permit at once during the window (a window that never filled the limit says nothing about more). */
  #peak = 0;

  /** `clock`: milliseconds, the clock attempts' start times are read on (performance.now()). */
  constructor(floor: number, ceiling: number, clock: () => number = () => performance.now()) {
    this.#clock = clock;
    this.#ceiling = Math.max(1, ceiling);
    this.#floor = Math.min(Math.max(1, floor), this.#ceiling);
    this.#limit = this.#floor;
    this.#since = clock();
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

  /** A reload changed `concurrency.min` or worker_count: the limit stays within them, the knowledge stays. */
  setBounds(floor: number, ceiling: number): void {
    this.#ceiling = Math.max(1, ceiling);
    this.#floor = Math.min(Math.max(1, floor), this.#ceiling);
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
   * An attempt started at `startedAt`. A window is the cohort of the first attempts started under its
   * limit, judged once all of them ended: judging the first ones to END would favour the fast ones.
   */
  attemptStarted(startedAt: number): void {
    if (startedAt <= this.#since || this.#started >= this.#target) return;
    if (++this.#started === this.#target) this.#cohortEnd = startedAt;
  }

  /**
   * An attempt that started at `startedAt` (on the clock) ended now: `ok` false for a transient
   * outcome. Returns true when the limit rose (waiting slots may be admitted).
   */
  attemptEnded(startedAt: number, ok: boolean): boolean {
    if (startedAt <= this.#since) return false;
    const now = this.#clock();
    if (startedAt <= this.#cohortEnd) {
      if (ok) this.#sample(now - startedAt);
      else this.#drops++;
      if (this.#answered + this.#drops < this.#target) return false;
    } else {
      // Attempts started later keep ending before the window's own stragglers (or a report was lost):
      // judge it with those counted as slow as the time since the last of them started.
      if (++this.#later < STRAGGLER_WINDOWS * this.#target) return false;
      while (this.#answered + this.#drops < this.#target) this.#sample(now - this.#cohortEnd);
    }
    const before = this.#limit;
    this.#decide(now);
    return this.#limit > before;
  }

  #sample(latency: number): void {
    if (this.#measuring) this.#latencies[this.#answered] = latency;
    else this.#sum += latency < this.#cap ? latency : this.#cap;
    this.#answered++;
  }

  #decide(now: number): void {
    const answered = this.#answered;
    const total = answered + this.#drops;
    if (this.#measuring) {
      this.#measuring = false;
      if (answered > 0) this.#baseline = baselineOf(this.#latencies, answered);
      this.#nextRefreshAt = now + BASELINE_REFRESH_MS;
      // The first measurement is at the floor, where the pool starts; a refresh goes back where it was.
      this.#setLimit(this.#restoreTo === 0 ? this.#grown(this.#limit, now) : this.#restoreTo, now);
      return;
    }
    const latency = answered === 0 ? Infinity : this.#sum / answered;
    const tolerated = this.#baseline * TOLERANCE;
    const slow = latency > tolerated;
    const probing = this.#limit >= this.#knee;
    // Mildly slow once is as likely noise as load: the next window decides. Clearly slow is load, and a
    // probe of the knee gets no second chance: a lucky window must not move the knee. Nor does a probe
    // that adds slots but not jobs per second (Little's law: slots / latency).
    const overloaded =
      this.#drops >= DROP_SHARE * total ||
      latency > this.#baseline * SURE_TOLERANCE ||
      (slow && (this.#slowBefore || probing)) ||
      (probing && !this.#gains(latency));
    this.#slowBefore = slow && !overloaded;
    let next = this.#limit;
    if (this.#slowBefore) {
      // Held: neither cut nor grown until the next window.
    } else if (overloaded) {
      this.#everOverloaded = true;
      this.#climb = 1;
      if (this.#limit === this.#knee) {
        // A failed probe: back to the slot below, which has just been good for a while.
        this.#probeRtts = Math.min(PROBE_WAIT_MAX, this.#probeRtts * 2);
        // A probe costs what its latency says: one twice as slow waits twice as long for the next.
        this.#probeCost = Math.min(PROBE_COST_MAX, Math.max(1, latency / this.#baseline));
        next = Math.max(this.#floor, this.#limit - 1);
      } else {
        this.#knee = Math.min(this.#knee, this.#limit);
        const cut = latency > SEVERE * tolerated && latency !== Infinity ? Math.max(CUT_MIN, tolerated / latency) : CUT_MAX;
        next = Math.max(this.#floor, Math.min(this.#limit - 1, Math.floor(this.#limit * cut)));
      }
      this.#probeAt = this.#nextProbeAt(now);
      if (this.#limit === this.#floor && ++this.#floorOverloads >= FLOOR_WINDOWS && answered > 0) {
        // As low as the pool may go and still slow: the endpoint is slower now, whatever the pool does.
        this.#baseline = latency;
        this.#knee = Infinity;
        this.#everOverloaded = false;
        this.#floorOverloads = 0;
      }
    } else {
      this.#floorOverloads = 0;
      if (probing && this.#peak >= this.#limit) {
        // The probe held: the knee is higher (or that window was lucky), the next one probed soon. One good
        // window is a weak verdict next to a steep knee: it moves the knee a slot, twice as far each time
        // in a row, not away.
        this.#knee = this.#limit + this.#climb;
        this.#climb *= 2;
        this.#probeRtts = PROBE_WAIT_MIN;
        this.#probeCost = 1;
        this.#probeAt = this.#nextProbeAt(now);
      }
      if (!probing) {
        this.#goodLimit = this.#limit;
        this.#goodLatency = latency;
      }
      if (this.#peak >= this.#limit) next = this.#grown(this.#limit, now);
      // Clearly faster than the baseline: the endpoint got faster (or the baseline was taken while it
      // was slow); measure it again now rather than allow the extra latency until the next refresh.
      if (latency * TOLERANCE < this.#baseline) this.#nextRefreshAt = now;
    }
    if (!overloaded && now >= this.#nextRefreshAt && next > this.#floor) {
      this.#measuring = true;
      this.#restoreTo = next;
      next = Math.max(this.#floor, Math.floor(next / 2));
    }
    this.#setLimit(next, now);
  }

  /**
   * Whether a probe window's jobs per second (limit / latency) beat the last good window below it by at
   * least GAIN_SHARE of what its extra slots would bring if latency did not rise.
   */
  #gains(latency: number): boolean {
    const below = this.#goodLimit;
    if (below === 0 || below >= this.#limit) return true;
    const added = this.#limit / below - 1;
    return this.#limit / latency >= (below / this.#goodLatency) * (1 + GAIN_SHARE * added);
  }

  /** When the knee may be probed next: the wait in baseline latencies, stretched by the last probe's cost, capped. */
  #nextProbeAt(now: number): number {
    return now + Math.min(PROBE_WAIT_CAP_MS, this.#probeRtts * this.#probeCost * this.#baseline);
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
    if (this.#measuring && this.#latencies.length < this.#target) this.#latencies = new Float64Array(this.#target);
    this.#started = 0;
    this.#cohortEnd = Infinity;
    this.#later = 0;
    this.#answered = 0;
    this.#drops = 0;
    this.#sum = 0;
    this.#cap = this.#baseline === 0 ? Infinity : CAP * TOLERANCE * this.#baseline;
    this.#peak = 0;
  }
}

/** A baseline window's latency: the mean with each value capped as a judging window caps it, around the median. */
export function baselineOf(values: Float64Array, n: number): number {
  const cap = CAP * TOLERANCE * medianOf(values, n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.min(values[i] as number, cap);
  return sum / n;
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
