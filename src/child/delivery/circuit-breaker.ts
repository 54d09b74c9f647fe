/**
 * A pool's circuit breaker, which is also its admission gate: how many slots may hold a job (a GRAB
 * outstanding or a job running) right now.
 *
 * - CLOSED, fully ramped: every slot may grab; the gate costs two integer updates per job.
 * - A run of `breakerThreshold` consecutive transient outcomes (endpoint refused, reset, timed out,
 *   answered 502/503/…) OPENS it: no slot grabs, so queued jobs stay in gearmand instead of being
 *   failed one by one, and the pool's owner hands back the jobs its slots hold (see slot.ts).
 * - After the cool-off it goes HALF-OPEN: with a health_url, one GET decides; without, one slot may
 *   take one real job, and that job's outcome decides. A failed probe re-opens with twice the cool-off
 *   (capped); a good one closes the breaker.
 * - Re-closed, it RAMPS: two slots may hold jobs, then one more per success (each finished job lets
 *   one more in, so the number of busy slots doubles per round of jobs), until every slot may. A
 *   recovering endpoint gets a growing load instead of worker_count requests at once.
 *
 * Outcomes where the endpoint answered and meant it (success, a permanent failure, gearman_ret 14, an
 * endpoint asking for a retry) all prove it reachable: they reset the run of transient failures.
 */
import { BreakerState } from '../../ipc/messages.js';
import type { DeliveryStatus } from '../../ipc/messages.js';
import type { DeliveryPolicy } from '../../config/types.js';
import type { Logger } from '../../log/logger.js';
import { MAX_TIMER_MS } from '../job.js';

/** While the breaker stays open, at most one summary line per this many milliseconds. */
export const OPEN_SUMMARY_INTERVAL_MS = 10_000;

export interface BreakerHooks {
  /** Permits became available: slots that were refused may try again. */
  onAdmit(): void;
  /** The breaker opened: jobs held while waiting for a retry go back to gearmand now. */
  onOpen(): void;
  /** GET of the health URL; resolves true for a 2xx answer. Only called when the policy has one. */
  checkHealth(url: string): Promise<{ healthy: boolean; reason: string }>;
  /** Jobs queued in gearmand for the pool's functions, for the "breaker opened" line; null if unknown. */
  queuedJobs(): Promise<number | null>;
}

export class CircuitBreaker {
  readonly #hooks: BreakerHooks;
  readonly #log: Logger;
  #policy: DeliveryPolicy;
  #slots: number;
  #state: BreakerState = BreakerState.CLOSED;
  #since = Date.now();
  /** Slots that may hold a job; Infinity when closed and fully ramped. */
  #limit = Infinity;
  #inUse = 0;
  /** Half-open without a health URL: whether the one probe permit is taken. */
  #probing = false;
  #consecutive = 0;
  #lastReason: string | null = null;
  #cooloffMs: number;
  #timer: NodeJS.Timeout | null = null;
  #opened = 0;
  /** Date.now() when the breaker last left CLOSED (half-open probes do not reset it). */
  #trippedAt = 0;
  /** Counted while open, reported by the summary line. */
  #handedBackWhileOpen = 0;
  #failedProbes = 0;
  #summaryTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(policy: DeliveryPolicy, slots: number, hooks: BreakerHooks, log: Logger) {
    this.#policy = policy;
    this.#slots = slots;
    this.#hooks = hooks;
    this.#log = log;
    this.#cooloffMs = policy.breakerCooloffMs;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** True while slots must give jobs back instead of retrying them in place (open or half-open). */
  get tripped(): boolean {
    return this.#state !== BreakerState.CLOSED;
  }

  /** Whether a slot could take a permit now (a query: takes nothing). */
  get admits(): boolean {
    if (this.#state === BreakerState.CLOSED) return this.#inUse < this.#limit;
    return this.#state === BreakerState.HALF_OPEN && this.#policy.healthUrl === null && !this.#probing;
  }

  /** Takes a permit for one grab-and-job; false when the gate is shut or full. */
  acquire(): boolean {
    if (this.#state === BreakerState.CLOSED) {
      if (this.#inUse >= this.#limit) return false;
      this.#inUse++;
      return true;
    }
    if (this.#state === BreakerState.HALF_OPEN && this.#policy.healthUrl === null && !this.#probing) {
      this.#probing = true;
      this.#inUse++;
      return true;
    }
    return false;
  }

  /** Gives a permit back (NO_JOB, the job finished or was handed back, the slot stopped). */
  release(): void {
    if (this.#inUse > 0) this.#inUse--;
    if (this.#probing && this.#state === BreakerState.HALF_OPEN) {
      // The probe slot found no job (or gave it up): the permit is free for whoever hears of work next.
      this.#probing = false;
      this.#hooks.onAdmit();
    } else if (this.#state === BreakerState.CLOSED && this.#limit !== Infinity && this.#inUse < this.#limit) {
      this.#hooks.onAdmit();
    }
  }

  /** The endpoint answered (success, or a failure it meant): it is reachable. */
  reachable(): void {
    this.#consecutive = 0;
    if (this.#state === BreakerState.HALF_OPEN || this.#state === BreakerState.OPEN) {
      this.#close('the endpoint answered');
      return;
    }
    if (this.#limit !== Infinity) {
      this.#limit++;
      if (this.#limit >= this.#slots) {
        this.#limit = Infinity;
        this.#log.info({ slots: this.#slots }, 'circuit breaker: every slot takes jobs again');
      }
      this.#hooks.onAdmit();
    }
  }

  /** A transient outcome (refused, reset, timeout, a retryable status): may open the breaker. */
  transient(reason: string): void {
    this.#lastReason = reason;
    this.#consecutive++;
    if (this.#state === BreakerState.HALF_OPEN) {
      this.#failedProbes++;
      this.#open(Math.min(this.#policy.breakerMaxCooloffMs, this.#cooloffMs * 2));
      return;
    }
    if (this.#state === BreakerState.CLOSED && this.#policy.breakerThreshold > 0 && this.#consecutive >= this.#policy.breakerThreshold) {
      this.#open(this.#policy.breakerCooloffMs);
    }
  }

  /** A job was handed back while the breaker was tripped (for the summary line). */
  handedBack(): void {
    if (this.tripped) this.#handedBackWhileOpen++;
  }

  /** worker_count changed. */
  resize(slots: number): void {
    this.#slots = slots;
    if (this.#limit !== Infinity && this.#limit >= slots) this.#limit = Infinity;
    this.#hooks.onAdmit();
  }

  /** A reload changed the policy: thresholds and cool-offs apply from the next event. */
  update(policy: DeliveryPolicy): void {
    const previousThreshold = this.#policy.breakerThreshold;
    this.#policy = policy;
    if (policy.breakerThreshold === 0 && previousThreshold !== 0 && this.tripped) this.#close('the breaker was disabled by a reload');
  }

  status(retrying: number): DeliveryStatus {
    return {
      breaker: this.#state,
      since: this.#since,
      lastReason: this.#lastReason,
      admitted: this.#state === BreakerState.OPEN ? 0 : this.#state === BreakerState.HALF_OPEN ? 1 : Math.min(this.#slots, this.#limit),
      retrying,
      opened: this.#opened,
    };
  }

  /** Stops the timers (the pool is stopping). */
  close(): void {
    this.#closed = true;
    this.#clearTimers();
  }

  // ── transitions ──────────────────────────────────────────────────────────────────────────────────

  #open(cooloffMs: number): void {
    const reopening = this.#state === BreakerState.HALF_OPEN;
    this.#state = BreakerState.OPEN;
    this.#since = Date.now();
    this.#probing = false;
    this.#cooloffMs = cooloffMs;
    this.#clearTimer();
    if (!this.#closed) {
      this.#timer = setTimeout(() => this.#halfOpen(), Math.min(MAX_TIMER_MS, cooloffMs));
      this.#timer.unref();
    }
    if (!reopening) {
      this.#opened++;
      this.#trippedAt = this.#since;
      this.#handedBackWhileOpen = 0;
      this.#failedProbes = 0;
      const at = { reason: this.#lastReason, consecutiveFailures: this.#consecutive, cooloffMs };
      void this.#hooks.queuedJobs().then(
        (queued) => this.#log.warn({ ...at, queuedInGearmand: queued }, 'circuit breaker opened: the pool stops taking jobs; queued jobs wait in gearmand'),
        () => this.#log.warn(at, 'circuit breaker opened: the pool stops taking jobs; queued jobs wait in gearmand'),
      );
      this.#startSummary();
    } else if (this.#log.debug()) {
      this.#log.debug({ reason: this.#lastReason, cooloffMs }, 'circuit breaker probe failed; open again');
    }
    this.#hooks.onOpen();
  }

  #halfOpen(): void {
    this.#timer = null;
    if (this.#state !== BreakerState.OPEN || this.#closed) return;
    this.#state = BreakerState.HALF_OPEN;
    this.#since = Date.now();
    const url = this.#policy.healthUrl;
    if (url === null) {
      // One real job is the probe: the next slot that hears of work takes it.
      this.#hooks.onAdmit();
      return;
    }
    void this.#hooks.checkHealth(url).then(
      ({ healthy, reason }) => {
        if (this.#state !== BreakerState.HALF_OPEN) return;
        if (healthy) this.#close(`health check ${url} passed`);
        else this.transient(`health check ${url}: ${reason}`);
      },
      (error: unknown) => {
        if (this.#state === BreakerState.HALF_OPEN) this.transient(`health check ${url}: ${String(error)}`);
      },
    );
  }

  #close(why: string): void {
    this.#state = BreakerState.CLOSED;
    this.#since = Date.now();
    this.#probing = false;
    this.#consecutive = 0;
    this.#cooloffMs = this.#policy.breakerCooloffMs;
    this.#clearTimers();
    // Ramp: the probe's slot plus one, then one more per success.
    this.#limit = this.#slots <= 2 ? Infinity : 2;
    this.#log.info({ why, handedBack: this.#handedBackWhileOpen, failedProbes: this.#failedProbes, trippedForMs: Date.now() - this.#trippedAt }, 'circuit breaker closed: the pool takes jobs again, ramping up');
    this.#hooks.onAdmit();
  }

  /** While open: one line every OPEN_SUMMARY_INTERVAL_MS instead of one per job. */
  #startSummary(): void {
    if (this.#summaryTimer !== null || this.#closed) return;
    this.#summaryTimer = setInterval(() => {
      if (!this.tripped) {
        this.#clearSummary();
        return;
      }
      this.#log.warn(
        { state: this.#state, reason: this.#lastReason, trippedForMs: Date.now() - this.#trippedAt, handedBack: this.#handedBackWhileOpen, failedProbes: this.#failedProbes, nextProbeInMs: this.#cooloffMs },
        'circuit breaker still open',
      );
    }, OPEN_SUMMARY_INTERVAL_MS);
    this.#summaryTimer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }

  #clearSummary(): void {
    if (this.#summaryTimer !== null) {
      clearInterval(this.#summaryTimer);
      this.#summaryTimer = null;
    }
  }

  #clearTimers(): void {
    this.#clearTimer();
    this.#clearSummary();
  }
}
