/**
 * One circuit breaker per function of a pool, so that one function's outage does not slow the others
 * (Envoy's outlier detection, Cloud Tasks' per-queue throttling): a function whose jobs keep failing
 * transiently is no longer registered with gearmand (CANT_DO) while its breaker is open; its jobs wait
 * in gearmand, and the pool's other functions keep every slot. Half-open, ONE slot registers it again
 * (the probe slot) and the outcome of the next job of it decides; closed, every slot registers it.
 *
 * A breaker is made the first time a function fails, so a pool that never fails keeps none. What each
 * slot registers is abilitiesFor(); the pool applies it to its slots whenever onAbilitiesChanged fires.
 */
import type { DeliveryPolicy } from '../../config/types.js';
import { BreakerState } from '../../ipc/messages.js';
import type { FunctionBreakerStatus } from '../../ipc/messages.js';
import type { Logger } from '../../log/logger.js';
import { CircuitBreaker } from './circuit-breaker.js';

export interface FunctionBreakersHooks {
  /** Which functions the slots register changed: apply abilitiesFor() to every slot. */
  onAbilitiesChanged(): void;
  /** `functionName`'s breaker opened: its jobs waiting for a retry go back to gearmand now. */
  onOpen(functionName: string): void;
  /** `functionName` closed again: the pool ramps up rather than sending every slot's job at once. */
  onClose(functionName: string): void;
  /** The slot to probe a half-open function through (an idle one if any), or null when the pool has none. */
  pickProbeSlot(): string | null;
  checkHealth(url: string): Promise<{ healthy: boolean; reason: string }>;
  /** Jobs of `functionName` queued in gearmand, for the log line; null if unknown. */
  queuedJobs(functionName: string): Promise<number | null>;
}

export class FunctionBreakers {
  readonly #hooks: FunctionBreakersHooks;
  readonly #log: Logger;
  readonly #breakers = new Map<string, CircuitBreaker>();
  /** Half-open functions and the one slot (by id) that registers each. */
  readonly #probes = new Map<string, string>();
  #policy: DeliveryPolicy;
  #slots: number;
  #closed = false;

  constructor(policy: DeliveryPolicy, slots: number, hooks: FunctionBreakersHooks, log: Logger) {
    this.#policy = policy;
    this.#slots = slots;
    this.#hooks = hooks;
    this.#log = log;
  }

  /** Whether jobs of `functionName` must go back to gearmand instead of waiting for a retry here. */
  tripped(functionName: string): boolean {
    return this.#breakers.get(functionName)?.tripped ?? false;
  }

  /** Returns true when the function's half-open probe failed (see CircuitBreaker.transient). */
  transient(functionName: string, reason: string, jobKey: string, askedMs: number | null): boolean {
    if (this.#closed) return false;
    return this.#breaker(functionName).transient(reason, jobKey, askedMs);
  }

  /** Opens `functionName`'s breaker now for at least `cooloffMs`. */
  trip(functionName: string, reason: string, cooloffMs: number): void {
    if (this.#closed) return;
    this.#breaker(functionName).trip(reason, cooloffMs);
  }

  /** A job of `functionName` got an answer the endpoint meant. */
  reachable(functionName: string): void {
    this.#breakers.get(functionName)?.reachable();
  }

  handedBack(functionName: string): void {
    this.#breakers.get(functionName)?.handedBack();
  }

  /** The functions of `functions` that slot `slotId` registers now. */
  abilitiesFor(slotId: string, functions: readonly string[]): string[] {
    if (this.#breakers.size === 0) return [...functions];
    return functions.filter((name) => {
      const state = this.#breakers.get(name)?.state ?? BreakerState.CLOSED;
      return state === BreakerState.CLOSED || (state === BreakerState.HALF_OPEN && this.#probes.get(name) === slotId);
    });
  }

  /** The functions every slot registers (the set a generation's wake groups share). */
  commonAbilities(functions: readonly string[]): string[] {
    return functions.filter((name) => (this.#breakers.get(name)?.state ?? BreakerState.CLOSED) === BreakerState.CLOSED);
  }

  /** The slot `slotId` stopped: a function it was probing for gets another probe slot. */
  slotGone(slotId: string): void {
    let changed = false;
    for (const [name, probe] of this.#probes) {
      if (probe !== slotId) continue;
      const next = this.#hooks.pickProbeSlot();
      if (next === null) this.#probes.delete(name);
      else this.#probes.set(name, next);
      changed = true;
    }
    if (changed) this.#hooks.onAbilitiesChanged();
  }

  update(policy: DeliveryPolicy): void {
    this.#policy = policy;
    for (const breaker of this.#breakers.values()) breaker.update(policy);
  }

  resize(slots: number): void {
    this.#slots = slots;
    for (const breaker of this.#breakers.values()) breaker.resize(slots);
  }

  status(): Record<string, FunctionBreakerStatus> {
    const out: Record<string, FunctionBreakerStatus> = {};
    for (const [name, breaker] of this.#breakers) {
      // An own property even for a function named __proto__ (a plain assignment would set the prototype).
      Object.defineProperty(out, name, { value: breaker.functionStatus(), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }

  close(): void {
    this.#closed = true;
    for (const breaker of this.#breakers.values()) breaker.close();
  }

  #breaker(functionName: string): CircuitBreaker {
    let breaker = this.#breakers.get(functionName);
    if (breaker !== undefined) return breaker;
    breaker = new CircuitBreaker(
      this.#policy,
      this.#slots,
      {
        onAdmit: () => undefined,
        onOpen: () => {
          // Opened, or a failed probe re-opened it: nobody registers the function any more.
          this.#probes.delete(functionName);
          this.#hooks.onAbilitiesChanged();
          this.#hooks.onOpen(functionName);
        },
        onHalfOpen: () => {
          const probe = this.#hooks.pickProbeSlot();
          if (probe !== null) this.#probes.set(functionName, probe);
          this.#hooks.onAbilitiesChanged();
        },
        onClose: () => {
          this.#probes.delete(functionName);
          this.#hooks.onAbilitiesChanged();
          this.#hooks.onClose(functionName);
        },
        checkHealth: (url) => this.#hooks.checkHealth(url),
        queuedJobs: () => this.#hooks.queuedJobs(functionName),
      },
      this.#log,
      { functionName },
    );
    this.#breakers.set(functionName, breaker);
    return breaker;
  }
}
