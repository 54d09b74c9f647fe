/**
 * Which slots of a pool may hold a job right now (a GRAB outstanding or a job held): the one place that
 * decides whether a slot may grab. A slot takes a permit before it grabs and gives it back when the grab
 * comes back empty or its job ends; a slot refused one waits here and is kicked, oldest first, when the
 * gate admits again.
 *
 * A permit needs every input to agree, checked in this order (docs/delivery.md, Retries and the
 * circuit breaker; docs/flow-control.md):
 *   1. the pool is not paused            (an operator's pause: setPaused)
 *   2. the circuit breaker has a permit   (none while open, one probe while half-open, a ramp after)
 *   3. the adaptive concurrency limit     (`concurrency.mode` "adaptive": adaptive-limit.ts)
 *   4. a rate token                        (`rate_limit`: token-bucket.ts)
 * A permit carries its token until a job arrives: a grab answered NO_JOB gives it back, so an idle pool
 * keeps its burst. A slot waiting only for a token is woken by one timer, set for the next token.
 * Without a rate limit and with fixed concurrency the gate is the breaker alone, as before.
 */
import { ConcurrencyMode } from '../config/types.js';
import type { ConcurrencyPolicy, RateLimit } from '../config/types.js';
import type { GateFlowStatus } from '../ipc/messages.js';
import { AdaptiveLimit } from './adaptive-limit.js';
import type { CircuitBreaker } from './delivery/circuit-breaker.js';
import type { AttemptFeedback } from './delivery/delivery.js';
import { TokenBucket } from './token-bucket.js';

/** A slot waiting for a permit. */
export interface GateWaiter {
  /** A permit may be free: try again. */
  kick(): void;
}

/** The settings the gate follows, from the pool's config; a reload hands it new ones. */
export interface FlowSettings {
  rateLimit: RateLimit | null;
  concurrency: ConcurrencyPolicy;
  workerCount: number;
}

export class AdmissionGate implements AttemptFeedback {
  readonly #breaker: CircuitBreaker;
  /** Slots refused a permit, in the order they were refused. */
  readonly #waiting = new Set<GateWaiter>();
  /** An operator paused the pool (docs/operations.md, Pause and resume): no permit at all. */
  #paused = false;
  /** Permits held now. */
  #held = 0;
  #workerCount = 0;
  #adaptive: AdaptiveLimit | null = null;
  #bucket: TokenBucket | null = null;
  /** The one timer of the gate: set for the next token while a slot waits only for one. */
  #tokenTimer: NodeJS.Timeout | null = null;
  /** A kick of the waiting slots is queued (a microtask): a slot that gives its permit back takes it again first. */
  #kickQueued = false;
  #closed = false;
  readonly #onTokenDue = (): void => {
    this.#tokenTimer = null;
    this.admitWaiting();
  };
  readonly #queuedKick = (): void => {
    this.#kickQueued = false;
    this.admitWaiting();
  };

  constructor(breaker: CircuitBreaker, settings?: FlowSettings) {
    this.#breaker = breaker;
    if (settings !== undefined) this.configure(settings);
  }

  /** Start and reload: the rate limit and the concurrency mode apply at once, in place. */
  configure(settings: FlowSettings): void {
    this.#workerCount = settings.workerCount;
    const rate = settings.rateLimit;
    if (rate === null) this.#bucket = null;
    else if (this.#bucket === null) this.#bucket = new TokenBucket(rate.perSecond, rate.burst);
    else this.#bucket.configure(rate.perSecond, rate.burst);
    const { mode, min } = settings.concurrency;
    const ceiling = Math.max(1, settings.workerCount);
    if (mode !== ConcurrencyMode.ADAPTIVE) this.#adaptive = null;
    else if (this.#adaptive === null) this.#adaptive = new AdaptiveLimit(min, ceiling);
    else this.#adaptive.setBounds(min, ceiling);
    // A timer set for the old rate may be too late for the new one.
    this.#clearTokenTimer();
    this.admitWaiting();
  }

  /** Whether a permit could be taken now (a query: takes nothing). */
  get admits(): boolean {
    return this.#admitsBeforeRate && (this.#bucket === null || this.#bucket.available);
  }

  /** Takes a permit (and a token) for one grab-and-job; false when any input says no. */
  acquire(): boolean {
    if (this.#paused) return false;
    if (this.#adaptive === null && this.#bucket === null) {
      // Without flow control the gate is the breaker alone, as it was before there was any.
      if (!this.#breaker.acquire()) return false;
      this.#held++;
      return true;
    }
    if (!this.#admitsBeforeRate) return false;
    if (this.#bucket !== null && !this.#bucket.take()) {
      this.#armTokenTimer();
      return false;
    }
    if (!this.#breaker.acquire()) {
      this.#bucket?.giveBack();
      return false;
    }
    this.#held++;
    this.#adaptive?.inUse(this.#held);
    return true;
  }

  /** Paused: no permit for anyone; resumed: the waiting slots are kicked at once. */
  setPaused(paused: boolean): void {
    this.#paused = paused;
    if (!paused) this.admitWaiting();
  }

  /** Gives a permit back; `unused`: no job came with it (NO_JOB, an abandoned or lost GRAB), so its token goes back too. */
  release(unused: boolean): void {
    if (this.#held > 0) this.#held--;
    if (unused) this.#bucket?.giveBack();
    this.#breaker.release();
    if (this.#waiting.size > 0 && (this.#adaptive !== null || (unused && this.#bucket !== null))) this.#queueKick();
  }

  /** `waiter` was refused: kick it when a permit frees up. */
  wait(waiter: GateWaiter): void {
    this.#waiting.add(waiter);
  }

  /** `waiter` no longer wants a permit (it is stopping). */
  forget(waiter: GateWaiter): void {
    this.#waiting.delete(waiter);
  }

  /** Permits may be free: kicks waiting slots, oldest first, while the gate admits. */
  admitWaiting(): void {
    for (const waiter of this.#waiting) {
      if (!this.#admitsBeforeRate) return;
      // One look at the bucket: it refills continuously, so a second look could disagree with the first.
      if (this.#bucket !== null && !this.#bucket.available) {
        this.#armTokenTimer();
        return;
      }
      this.#waiting.delete(waiter);
      waiter.kick();
    }
  }

  /** The pool is draining: nobody waits any more, no timer runs. */
  clear(): void {
    this.#closed = true;
    this.#waiting.clear();
    this.#clearTokenTimer();
  }

  // ── AttemptFeedback (the delivery, about each POST) ─────────────────────────────────────────────────

  attemptStarted(startedAt: number): void {
    this.#adaptive?.attemptStarted(startedAt);
  }

  attemptEnded(startedAt: number, ok: boolean): void {
    if (this.#adaptive?.attemptEnded(startedAt, ok) === true && this.#waiting.size > 0) this.#queueKick();
  }

  retryStarted(): void {
    this.#bucket?.takeOnCredit();
  }

  status(): GateFlowStatus {
    const adaptive = this.#adaptive;
    const bucket = this.#bucket;
    const baseline = adaptive?.baselineMs ?? null;
    return {
      concurrency: adaptive === null ? ConcurrencyMode.FIXED : ConcurrencyMode.ADAPTIVE,
      concurrencyLimit: adaptive === null ? this.#workerCount : Math.min(adaptive.limit, this.#workerCount),
      baselineMs: baseline === null ? null : Math.round(baseline * 10) / 10,
      ratePerSecond: bucket?.perSecond ?? null,
      burst: bucket?.burst ?? null,
      tokens: bucket === null ? null : Math.floor(bucket.tokens),
      waitingSlots: this.#waiting.size,
    };
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────

  /** Inputs 1–3 of the order above agree: all that is left to ask is a rate token. */
  get #admitsBeforeRate(): boolean {
    return !this.#paused && this.#breaker.admits && this.#underLimit;
  }

  get #underLimit(): boolean {
    return this.#adaptive === null || this.#held < this.#adaptive.limit;
  }

  #armTokenTimer(): void {
    if (this.#tokenTimer !== null || this.#closed || this.#bucket === null) return;
    this.#tokenTimer = setTimeout(this.#onTokenDue, Math.max(1, Math.ceil(this.#bucket.msUntilToken())));
  }

  #clearTokenTimer(): void {
    if (this.#tokenTimer !== null) {
      clearTimeout(this.#tokenTimer);
      this.#tokenTimer = null;
    }
  }

  #queueKick(): void {
    if (this.#kickQueued) return;
    this.#kickQueued = true;
    queueMicrotask(this.#queuedKick);
  }
}
