/**
 * A pool's slots across reloads (docs/operations.md, Signals and reload): the current generation, the
 * older ones still serving until the current one is registered with every server (or loop_timeout
 * passes), and the slots told to stop until their connections are closed. The pool is never left at
 * zero workers while a generation replaces another (the original's could be, for a while).
 *
 * Each generation has its own WakeGroups, one per server: the slots of one generation register the
 * same functions, so one sleeper among them can wake the rest (wake-group.ts).
 */
import type { SlotStatus } from '../ipc/messages.js';
import type { Slot } from './slot.js';
import { WakeGroup } from './gearman/wake-group.js';

/** How often a pending replacement checks whether the new slots are registered. */
const RETIRE_POLL_MS = 20;

export interface SlotGenerationsOptions {
  /** A new, started slot of the generation whose wake groups are `wakeGroups`. */
  newSlot(wakeGroups: readonly WakeGroup[]): Slot;
  /** `slot` is being stopped (before its stop begins). */
  retiring(slot: Slot): void;
  /** The pool's settings now: how many servers a slot registers with, and how long a retired slot's job may run. */
  current(): { servers: number; graceMs: number };
}

export class SlotGenerations {
  readonly #options: SlotGenerationsOptions;
  /** The current generation's slots. */
  #slots: Slot[] = [];
  /** The current generation's wake groups, one per server (older generations keep theirs). */
  #wakeGroups: WakeGroup[] = [];
  /** Older generations' slots, still serving until the current ones are registered. */
  #outgoing: Slot[] = [];
  #retireTimer: NodeJS.Timeout | null = null;
  #retireDeadline = 0;
  /** Slots told to stop, until their connections are closed. */
  readonly #stopping = new Set<Slot>();

  constructor(options: SlotGenerationsOptions) {
    this.#options = options;
  }

  /** The current generation's slots. */
  get current(): readonly Slot[] {
    return this.#slots;
  }

  /** The current generation's wake groups. */
  get wakeGroups(): readonly WakeGroup[] {
    return this.#wakeGroups;
  }

  /** The slots that may grab: the current generation's and the outgoing ones'. */
  get serving(): readonly Slot[] {
    return this.#outgoing.length === 0 ? this.#slots : [...this.#outgoing, ...this.#slots];
  }

  get replacing(): number {
    return this.#outgoing.length;
  }

  /** A new generation of `count` slots; the current one (if any) serves on until it is registered everywhere or `deadlineMs` passes. */
  replace(servers: number, count: number, deadlineMs: number): void {
    this.#outgoing.push(...this.#slots);
    this.#wakeGroups = Array.from({ length: servers }, () => new WakeGroup());
    this.#slots = this.#newSlots(count);
    if (this.#outgoing.length === 0) return;
    this.#retireDeadline = Date.now() + deadlineMs;
    this.#watchRetire();
  }

  /** worker_count changed: slots added to the current generation, or the surplus stopped with `graceMs` for a running job. */
  resize(want: number, graceMs: number): void {
    const have = this.#slots.length;
    if (want > have) {
      this.#slots.push(...this.#newSlots(want - have));
    } else if (want < have) {
      // Idle slots first, then the newest: running jobs are disturbed as little as possible.
      const order = this.#slots.map((slot, index) => ({ slot, index })).sort((a, b) => Number(b.slot.idle) - Number(a.slot.idle) || b.index - a.index);
      const surplus = new Set(order.slice(0, have - want).map((o) => o.slot));
      this.#slots = this.#slots.filter((slot) => !surplus.has(slot));
      for (const slot of surplus) this.#retire(slot, graceMs);
    }
  }

  /** Every slot stops grabbing now; running jobs get `graceMs`. Resolves when every connection is closed. */
  stopAll(graceMs: number): Promise<void> {
    this.#stopRetireWatch();
    for (const slot of [...this.#outgoing, ...this.#slots]) this.#retire(slot, graceMs);
    this.#outgoing = [];
    this.#slots = [];
    return Promise.all([...this.#stopping].map((slot) => slot.stopped)).then(() => undefined);
  }

  /** A second, shorter deadline (e.g. a hard stop's) for the jobs of the slots still stopping. */
  hurry(graceMs: number): void {
    for (const slot of this.#stopping) void slot.stop(graceMs);
  }

  /** Every slot of every generation, the stopping ones included. */
  statuses(): SlotStatus[] {
    const slots: SlotStatus[] = [];
    for (const slot of this.#outgoing) slots.push(slot.status());
    for (const slot of this.#slots) slots.push(slot.status());
    for (const slot of this.#stopping) slots.push(slot.status());
    return slots;
  }

  /** Liveness of every connection (gearman-connection.ts, tick). */
  tick(now: number): void {
    for (const slot of this.#outgoing) slot.tick(now);
    for (const slot of this.#slots) slot.tick(now);
    for (const slot of this.#stopping) slot.tick(now);
  }

  #newSlots(count: number): Slot[] {
    const slots: Slot[] = [];
    for (let i = 0; i < count; i++) slots.push(this.#options.newSlot(this.#wakeGroups));
    return slots;
  }

  #retire(slot: Slot, graceMs: number): void {
    this.#stopping.add(slot);
    this.#options.retiring(slot);
    void slot.stop(graceMs).then(() => {
      this.#stopping.delete(slot);
    });
  }

  /** Retires the outgoing slots once the current generation is registered everywhere, or at the deadline. */
  #watchRetire(): void {
    if (this.#retireTimer !== null) return;
    const check = (): void => {
      const { servers, graceMs } = this.#options.current();
      const ready = this.#slots.every((slot) => slot.connectedServers >= servers);
      if (ready || Date.now() >= this.#retireDeadline) {
        this.#stopRetireWatch();
        const outgoing = this.#outgoing;
        this.#outgoing = [];
        for (const slot of outgoing) this.#retire(slot, graceMs);
      }
    };
    this.#retireTimer = setInterval(check, RETIRE_POLL_MS);
    check();
  }

  #stopRetireWatch(): void {
    if (this.#retireTimer !== null) {
      clearInterval(this.#retireTimer);
      this.#retireTimer = null;
    }
  }
}
