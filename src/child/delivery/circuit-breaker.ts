/**
 * A circuit breaker: closed → open after a run of transient outcomes → half-open after the cool-off
 * (one probe decides) → closed, or open again with twice the cool-off. A pool has two kinds:
 *
 * - The POOL breaker is also the pool's admission gate: how many slots may hold a job (a GRAB
 *   outstanding or a job running) right now. It hears of failures that say the endpoint's host cannot
 *   be reached (refused, reset, DNS, TLS). While open no slot grabs, so queued jobs stay in gearmand
 *   instead of being failed one by one. Half-open, one slot may take one real job (or one GET of
 *   health_url decides). Re-closed, it RAMPS: two slots, then one more per success, so a recovering
 *   endpoint gets a growing load instead of worker_count requests at once.
 * - A FUNCTION breaker (one per function that failed) hears of failures of that function's jobs (a
 *   retry_on_status status, no answer in time, an endpoint asking for a retry, a dead letter that
 *   cannot be written). While open, the pool stops registering the function with gearmand (CANT_DO),
 *   so its jobs wait there while the pool's other functions keep running (function-breakers.ts).
 *   Half-open, one slot registers it again and its next job is the probe (or health_url decides).
 *
 * The run counts DISTINCT jobs: one poison job retried again and again is one failure, so it cannot
 * open a breaker on its own; its retry budget ends it instead. The threshold is breaker_threshold, at
 * most the pool's slot count (a pool of 4 slots whose 4 jobs all fail has nothing else to try), and at
 * least 2. An endpoint's Retry-After lengthens the cool-off, up to max_retry_after.
 *
 * Outcomes where the endpoint answered and meant it (success, a permanent failure, gearman_ret 14) prove
 * it reachable: they end the run of transient failures, and close a tripped breaker.
 */
import { BreakerState } from '../../ipc/messages.js';
import type { DeliveryStatus, FunctionBreakerStatus } from '../../ipc/messages.js';
import type { DeliveryPolicy } from '../../config/types.js';
import type { Logger } from '../../log/logger.js';
import { MAX_TIMER_MS } from '../job.js';

/** While a breaker stays open, at most one summary line per this many milliseconds. */
export const OPEN_SUMMARY_INTERVAL_MS = 10_000;

export interface BreakerHooks {
  /** Pool breaker: permits became available: slots that were refused may try again. */
  onAdmit(): void;
  /** The breaker opened: jobs held while waiting for a retry go back to gearmand now. */
  onOpen(): void;
  /** Half-open without a health URL: let one real job through (the pool breaker does this itself by a permit). */
  onHalfOpen?(): void;
  /** Closed again (a function breaker's pool re-registers the function). */
  onClose?(): void;
  /** GET of the health URL; resolves true for a 2xx answer. Only called when the policy has one. */
  checkHealth(url: string): Promise<{ healthy: boolean; reason: string }>;
  /** Jobs queued in gearmand for what the breaker guards, for the "breaker opened" line; null if unknown. */
  queuedJobs(): Promise<number | null>;
}

export interface BreakerScope {
  /** null: the pool breaker, with permits; a name: that function's breaker, without. */
  functionName: string | null;
}

export class CircuitBreaker {
  readonly #hooks: BreakerHooks;
  readonly #log: Logger;
  readonly #functionName: string | null;
  #policy: DeliveryPolicy;
  #slots: number;
  #state: BreakerState = BreakerState.CLOSED;
  #since = Date.now();
  /** Slots that may hold a job; Infinity when closed and fully ramped (pool breaker only). */
  #limit = Infinity;
  #inUse = 0;
  /** Half-open: whether the one probe is taken. */
  #probing = false;
  /** The distinct jobs of the current run of transient outcomes. */
  readonly #failedJobs = new Set<string>();
  /** The longest wait an endpoint asked for during the current run (Retry-After), milliseconds. */
  #askedMs = 0;
  #lastReason: string | null = null;
  #cooloffMs: number;
  #timer: NodeJS.Timeout | null = null;
  /** performance.now() when the current cool-off ends. */
  #reopensAt = 0;
  #opened = 0;
  /** Date.now() when the breaker last left CLOSED (half-open probes do not reset it). */
  #trippedAt = 0;
  /** Counted while open, reported by the summary line. */
  #handedBackWhileOpen = 0;
  #failedProbes = 0;
  #summaryTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(policy: DeliveryPolicy, slots: number, hooks: BreakerHooks, log: Logger, scope: BreakerScope = { functionName: null }) {
    this.#policy = policy;
    this.#slots = slots;
    this.#hooks = hooks;
    this.#functionName = scope.functionName;
    this.#log = scope.functionName === null ? log : log.child({ function: scope.functionName });
    this.#cooloffMs = policy.breakerCooloffMs;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** True while jobs must be given back instead of retried in place (open or half-open). */
  get tripped(): boolean {
    return this.#state !== BreakerState.CLOSED;
  }

  /** Whether a slot could take a permit now (a query: takes nothing). */
  get admits(): boolean {
    if (this.#state === BreakerState.CLOSED) return this.#inUse < this.#limit;
    return this.#state === BreakerState.HALF_OPEN && this.#policy.healthUrl === null && !this.#probing && this.#functionName === null;
  }

  /** Takes a permit for one grab-and-job; false when the gate is shut or full. */
  acquire(): boolean {
    if (this.#state === BreakerState.CLOSED) {
      if (this.#inUse >= this.#limit) return false;
      this.#inUse++;
      return true;
    }
    if (this.admits) {
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
    // Called for every answered job: clear() on an empty Set still allocates a new table and links the
    // old one to it, the chain HeldJobs (delivered-job.ts) describes; 5,000,000 clears of an empty Set
    // took 573 scavenges and 33 ns each, guarded none and 2 ns.
    if (this.#failedJobs.size > 0) this.#failedJobs.clear();
    this.#askedMs = 0;
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

  /**
   * A transient outcome of job `jobKey` (refused, reset, timeout, a retryable status, a dead letter that
   * could not be written). `askedMs`: the wait the endpoint asked for, if any. May open the breaker.
   * Returns true when it was the half-open probe that failed (its attempt proved the outage, not the
   * job: the delivery does not count it against the job's budget).
   */
  transient(reason: string, jobKey: string, askedMs: number | null = null): boolean {
    this.#lastReason = reason;
    if (askedMs !== null) this.#askedMs = Math.max(this.#askedMs, Math.min(askedMs, this.#policy.maxRetryAfterMs));
    if (this.#state === BreakerState.HALF_OPEN) {
      this.#failedProbes++;
      this.#open(Math.min(this.#policy.breakerMaxCooloffMs, this.#cooloffMs * 2));
      return true;
    }
    if (this.#state !== BreakerState.CLOSED || this.#policy.breakerThreshold === 0) return false;
    if (this.#failedJobs.size < this.#threshold) this.#failedJobs.add(jobKey);
    if (this.#failedJobs.size >= this.#threshold) this.#open(this.#policy.breakerCooloffMs);
    return false;
  }

  /**
   * Opens now, for at least `cooloffMs` (the endpoint asked for that long, or the dead-letter file
   * cannot be written): no run of failures needed. An open breaker keeps the later of the two ends.
   */
  trip(reason: string, cooloffMs: number): void {
    this.#lastReason = reason;
    if (this.#state === BreakerState.OPEN) {
      if (performance.now() + cooloffMs > this.#reopensAt) this.#arm(cooloffMs);
      return;
    }
    if (this.#state === BreakerState.HALF_OPEN) this.#failedProbes++;
    this.#open(cooloffMs);
  }

  /**
   * Another part of the pool recovered (a function's breaker closed, and its queued jobs are coming):
   * admission ramps from the slots busy now, two more, then one more per success, as after a re-close.
   */
  ramp(): void {
    if (this.#state !== BreakerState.CLOSED || this.#functionName !== null) return;
    const limit = this.#inUse + 2;
    if (limit < this.#slots && limit < this.#limit) this.#limit = limit;
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

  functionStatus(): FunctionBreakerStatus {
    return { breaker: this.#state, since: this.#since, lastReason: this.#lastReason, opened: this.#opened };
  }

  /** Stops the timers (the pool is stopping). */
  close(): void {
    this.#closed = true;
    this.#clearTimers();
  }

  /** Distinct failing jobs that open the breaker: breaker_threshold, at most the pool's slots, at least 2. */
  get #threshold(): number {
    return Math.max(Math.min(this.#policy.breakerThreshold, this.#slots), Math.min(2, this.#policy.breakerThreshold));
  }

  // ── transitions ──────────────────────────────────────────────────────────────────────────────────

  #open(baseCooloffMs: number): void {
    const reopening = this.#state !== BreakerState.CLOSED;
    const cooloffMs = Math.max(baseCooloffMs, this.#askedMs);
    const consecutiveFailures = this.#failedJobs.size;
    this.#state = BreakerState.OPEN;
    this.#since = Date.now();
    this.#probing = false;
    this.#cooloffMs = baseCooloffMs;
    this.#failedJobs.clear();
    this.#askedMs = 0;
    this.#arm(cooloffMs);
    if (!reopening) {
      this.#opened++;
      this.#trippedAt = this.#since;
      this.#handedBackWhileOpen = 0;
      this.#failedProbes = 0;
      const at = { reason: this.#lastReason, failedJobs: consecutiveFailures, cooloffMs };
      const message =
        this.#functionName === null
          ? 'circuit breaker opened: the pool stops taking jobs; queued jobs wait in gearmand'
          : `circuit breaker opened for function ${this.#functionName}: the pool stops taking its jobs (its other functions go on); they wait in gearmand`;
      void this.#hooks.queuedJobs().then(
        (queued) => this.#log.warn({ ...at, queuedInGearmand: queued }, message),
        () => this.#log.warn(at, message),
      );
      this.#startSummary();
    } else if (this.#log.debug()) {
      this.#log.debug({ reason: this.#lastReason, cooloffMs }, 'circuit breaker probe failed; open again');
    }
    this.#hooks.onOpen();
  }

  #arm(cooloffMs: number): void {
    this.#clearTimer();
    this.#reopensAt = performance.now() + cooloffMs;
    if (this.#closed) return;
    this.#timer = setTimeout(() => this.#halfOpen(), Math.min(MAX_TIMER_MS, cooloffMs));
    this.#timer.unref();
  }

  #halfOpen(): void {
    this.#timer = null;
    if (this.#state !== BreakerState.OPEN || this.#closed) return;
    this.#state = BreakerState.HALF_OPEN;
    this.#since = Date.now();
    const url = this.#policy.healthUrl;
    if (url === null) {
      // One real job is the probe: the pool's next slot that hears of work takes it (its permit), or
      // the one slot that registers the function again.
      if (this.#hooks.onHalfOpen !== undefined) this.#hooks.onHalfOpen();
      else this.#hooks.onAdmit();
      return;
    }
    void this.#hooks.checkHealth(url).then(
      ({ healthy, reason }) => {
        if (this.#state !== BreakerState.HALF_OPEN) return;
        if (healthy) this.#close(`health check ${url} passed`);
        else void this.transient(`health check ${url}: ${reason}`, 'health-check');
      },
      (error: unknown) => {
        if (this.#state === BreakerState.HALF_OPEN) void this.transient(`health check ${url}: ${String(error)}`, 'health-check');
      },
    );
  }

  #close(why: string): void {
    this.#state = BreakerState.CLOSED;
    this.#since = Date.now();
    this.#probing = false;
    this.#failedJobs.clear();
    this.#askedMs = 0;
    this.#cooloffMs = this.#policy.breakerCooloffMs;
    this.#clearTimers();
    // Ramp: the probe's slot plus one, then one more per success.
    this.#limit = this.#slots <= 2 || this.#functionName !== null ? Infinity : 2;
    this.#log.info({ why, handedBack: this.#handedBackWhileOpen, failedProbes: this.#failedProbes, trippedForMs: Date.now() - this.#trippedAt }, 'circuit breaker closed: the pool takes jobs again, ramping up');
    this.#hooks.onClose?.();
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
        { state: this.#state, reason: this.#lastReason, trippedForMs: Date.now() - this.#trippedAt, handedBack: this.#handedBackWhileOpen, failedProbes: this.#failedProbes, nextProbeInMs: Math.max(0, Math.round(this.#reopensAt - performance.now())) },
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
