/**
 * What an operator paused in this pool (docs/operations.md, Pause and resume), as the pool applies it:
 * - the pool: the admission gate gives no permit, so no slot grabs; running jobs (and the retries of
 *   jobs a slot holds) finish, and new jobs wait in gearmand;
 * - a function: no slot registers it (the pool's abilities leave it out, so gearmand gets CANT_DO as
 *   soon as no job of it can be on the socket: abilities.ts), and gearmand keeps its jobs while the
 *   pool's other functions run.
 * The master owns the pause and sends all of it each time (`set-pause`, and with every `init` and
 * `reconfigure`), so applying it twice changes nothing.
 *
 * A pause is *settled* once nothing sent before it can still bring a job it forbids: no slot waits for
 * a GRAB while the pool is paused, and no connection owes a paused function's CANT_DO behind a GRAB
 * outstanding. gearmand answers a GRAB at once, so this takes a round trip; a hung server's GRAB is
 * waited for up to the grab-reply timeout, after which the slot has given it up (a late job it brings
 * is returned to gearmand while the pool is paused).
 */
import type { PauseFlowStatus, SlotStatus } from '../ipc/messages.js';
import type { PauseState } from '../ipc/settings.js';

/** How often a pause that is not settled yet looks again. */
const SETTLE_POLL_MS = 5;

/** What the settling check reads of a slot (slot.ts). */
export interface PausedSlot {
  /** A GRAB it waits for is outstanding. */
  readonly grabbing: boolean;
  /** A GRAB outstanding may still bring a job of a function it no longer registers. */
  readonly cantDoBehindGrab: boolean;
}

export class PoolPause {
  #pool = false;
  #functions = new Set<string>();

  /** The whole pool is paused. */
  get pool(): boolean {
    return this.#pool;
  }

  /** Takes the pause as a whole; says what changed. */
  set(pause: PauseState): { pool: boolean; functions: boolean } {
    const functions = new Set(pause.functions);
    const functionsChanged = functions.size !== this.#functions.size || [...functions].some((name) => !this.#functions.has(name));
    const poolChanged = pause.pool !== this.#pool;
    this.#pool = pause.pool;
    this.#functions = functions;
    return { pool: poolChanged, functions: functionsChanged };
  }

  /** Whether `functionName` is paused. */
  pausedFunction(functionName: string): boolean {
    return this.#functions.has(functionName);
  }

  /** `functions` without the paused ones (what a slot may register). */
  allowed(functions: readonly string[]): string[] {
    return this.#functions.size === 0 ? [...functions] : functions.filter((name) => !this.#functions.has(name));
  }

  /**
   * Whether the pause is settled: no `serving` slot (current and outgoing generations) waits for a GRAB
   * while the pool is paused, and no `current` slot owes a paused function's CANT_DO behind a GRAB. (A
   * generation being replaced keeps its functions until it stops, within loop_timeout.)
   */
  settled(serving: readonly PausedSlot[], current: readonly PausedSlot[]): boolean {
    if (this.#pool && serving.some((slot) => slot.grabbing)) return false;
    return !current.some((slot) => slot.cantDoBehindGrab);
  }

  /** The status the master shows: paused functions of the pool's `jobsList`, in its order. */
  status(jobsList: readonly string[]): PauseFlowStatus {
    return { paused: this.#pool, pausedFunctions: jobsList.filter((name) => this.#functions.has(name)) };
  }
}

/** The jobs `slots` hold, by function (own properties, so a function named "__proto__" is a key like any other). */
export function runningByFunction(slots: readonly SlotStatus[]): Record<string, number> {
  const running = new Map<string, number>();
  for (const slot of slots) {
    const fn = slot.job?.functionName;
    if (fn !== undefined) running.set(fn, (running.get(fn) ?? 0) + 1);
  }
  return Object.fromEntries(running);
}

/** Resolves true once `quiet()` holds, or false when it still does not after `timeoutMs`. */
export function whenQuiet(quiet: () => boolean, timeoutMs: number): Promise<boolean> {
  if (quiet()) return Promise.resolve(true);
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (quiet()) {
        clearInterval(timer);
        resolve(true);
      } else if (Date.now() >= deadline) {
        clearInterval(timer);
        resolve(false);
      }
    }, SETTLE_POLL_MS);
  });
}
