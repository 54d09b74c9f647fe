/**
 * Every pool's cumulative figures over every child process it ever had: jobs counters, per-function
 * and per-HTTP-code metrics, breaker openings (the pool's and each function's) and restarts. They
 * survive a child's restart, a reload that scales the pool to zero and back, and the pool's removal,
 * so the Prometheus counters never go back. The supervisors feed it (each child's latest report, its final totals, its exit, each
 * restart); the master's snapshot reads it, so `counters`, /status and /metrics show one set of totals.
 *
 * A child's figures count from its start: each report replaces the one before, and its exit moves the
 * last one into the pool's settled sums. A crashed child's jobs since its last report are lost
 * (gearmand re-queues those jobs anyway).
 */
import type { ChildCounters } from '../ipc/counters.js';
import { addCounters, zeroCounters } from '../ipc/counters.js';
import type { DeliveryStatus } from '../ipc/messages.js';
import type { ChildMetrics } from '../ipc/metrics.js';
import { addMetrics, emptyMetrics } from '../ipc/metrics.js';
import type { PoolTotals } from './observation.js';

export function emptyTotals(): PoolTotals {
  return { counters: zeroCounters(), metrics: emptyMetrics(), restarts: 0, breakerOpened: 0, functionBreakerOpened: new Map() };
}

function addByName(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): Map<string, number> {
  const sum = new Map(a);
  for (const [name, n] of b) sum.set(name, (sum.get(name) ?? 0) + n);
  return sum;
}

function addTotals(a: PoolTotals, b: PoolTotals): PoolTotals {
  return {
    counters: addCounters(a.counters, b.counters),
    metrics: addMetrics(a.metrics, b.metrics),
    restarts: a.restarts + b.restarts,
    breakerOpened: a.breakerOpened + b.breakerOpened,
    functionBreakerOpened: addByName(a.functionBreakerOpened, b.functionBreakerOpened),
  };
}

/** What a child reports about itself since it started; a field left out keeps the value last reported. */
export interface ChildFigures {
  counters?: ChildCounters;
  metrics?: ChildMetrics;
  breakerOpened?: number;
  functionBreakerOpened?: ReadonlyMap<string, number>;
}

/**
 * The breaker openings of a child's delivery status, for ChildTally.report. A child that reports no
 * delivery status (an older one) gives none, so the counts it last reported stand.
 */
export function deliveryFigures(delivery: DeliveryStatus | null): ChildFigures {
  if (delivery === null) return {};
  const byFunction = new Map<string, number>();
  // Object.entries: own keys only, so a function named "__proto__" or "constructor" is counted as itself.
  for (const [name, status] of Object.entries(delivery.functions ?? {})) if (status.opened > 0) byFunction.set(name, status.opened);
  return { breakerOpened: delivery.opened, functionBreakerOpened: byFunction };
}

/** One child process's entry: open from its fork to its exit. */
export interface ChildTally {
  report(figures: ChildFigures): void;
  /** The child exited: its last figures are the pool's for good, and later reports are ignored. */
  settle(): void;
}

interface PoolEntry {
  /** The children that have exited, and the restarts. */
  settled: PoolTotals;
  /** The last figures of each child still running. */
  open: Set<{ figures: PoolTotals }>;
}

export class PoolTotalsLedger {
  /** By pool name, in the order the pools first had a child; never deleted. */
  readonly #pools = new Map<string, PoolEntry>();

  /** Opens the entry of a child just forked for `pool`. */
  openChild(pool: string): ChildTally {
    const entry = this.#entry(pool);
    const child = { figures: emptyTotals() };
    entry.open.add(child);
    return {
      report: ({ counters, metrics, breakerOpened, functionBreakerOpened }) => {
        const last = child.figures;
        child.figures = {
          counters: counters ?? last.counters,
          metrics: metrics ?? last.metrics,
          restarts: 0,
          breakerOpened: breakerOpened ?? last.breakerOpened,
          functionBreakerOpened: functionBreakerOpened ?? last.functionBreakerOpened,
        };
      },
      settle: () => {
        if (entry.open.delete(child)) entry.settled = addTotals(entry.settled, child.figures);
      },
    };
  }

  /** A child of `pool` was forked again after an unexpected exit. */
  restarted(pool: string): void {
    this.#entry(pool).settled.restarts++;
  }

  /** One pool's totals: every child that exited plus the last report of each one running. */
  totalsOf(pool: string): PoolTotals {
    const entry = this.#pools.get(pool);
    if (entry === undefined) return emptyTotals();
    let sum = entry.settled;
    for (const child of entry.open) sum = addTotals(sum, child.figures);
    return sum;
  }

  /**
   * Totals by pool: `pools` first in their order (a pool that never had a child has zeros), then every
   * other pool that ever had a child (one removed from the config), in the order they first had one.
   */
  totals(pools: readonly string[]): Map<string, PoolTotals> {
    const out = new Map<string, PoolTotals>();
    for (const pool of [...pools, ...this.#pools.keys()]) if (!out.has(pool)) out.set(pool, this.totalsOf(pool));
    return out;
  }

  /** Restarts over every pool, removed ones included (the daemon-wide `child_restarts`). */
  get restarts(): number {
    let sum = 0;
    for (const entry of this.#pools.values()) sum += entry.settled.restarts;
    return sum;
  }

  #entry(pool: string): PoolEntry {
    let entry = this.#pools.get(pool);
    if (entry === undefined) {
      entry = { settled: emptyTotals(), open: new Set() };
      this.#pools.set(pool, entry);
    }
    return entry;
  }
}
