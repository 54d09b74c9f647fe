/**
 * Which slots of a pool may hold a job right now (a GRAB outstanding or a job held). A slot takes a
 * permit before it grabs and gives it back when the grab comes back empty or its job ends; a slot
 * refused a permit waits here and is kicked, oldest first, when permits free up. The circuit breaker
 * decides how many permits there are (none while open, one probe while half-open, a ramp after).
 */
import type { CircuitBreaker } from './delivery/circuit-breaker.js';

/** A slot waiting for a permit. */
export interface GateWaiter {
  /** A permit may be free: try again. */
  kick(): void;
}

export class AdmissionGate {
  readonly #breaker: CircuitBreaker;
  /** Slots refused a permit, in the order they were refused. */
  readonly #waiting = new Set<GateWaiter>();
  /** An operator paused the pool (docs/operations.md, Pause and resume): no permit at all. */
  #paused = false;

  constructor(breaker: CircuitBreaker) {
    this.#breaker = breaker;
  }

  /** Whether a permit could be taken now (a query: takes nothing). */
  get admits(): boolean {
    return !this.#paused && this.#breaker.admits;
  }

  /** Takes a permit for one grab-and-job; false when the gate is shut or full. */
  acquire(): boolean {
    return !this.#paused && this.#breaker.acquire();
  }

  /** Paused: no permit for anyone; resumed: the waiting slots are kicked at once. */
  setPaused(paused: boolean): void {
    this.#paused = paused;
    if (!paused) this.admitWaiting();
  }

  release(): void {
    this.#breaker.release();
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
      if (!this.admits) return;
      this.#waiting.delete(waiter);
      waiter.kick();
    }
  }

  /** The pool is draining: nobody waits any more. */
  clear(): void {
    this.#waiting.clear();
  }
}
