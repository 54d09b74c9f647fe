/**
 * A pool's per-function circuit breakers as the master's views show them (/status, /metrics, `gauges`,
 * the status page, /readyz). Pure functions of what the pool's child reports
 * (DeliveryStatus.functions) and of the pool's configured functions.
 *
 * Only the pool's own functions are shown: a reload that drops a function from `jobs_list` keeps the
 * child (its slots are replaced), and with it a breaker for a function nobody registers any more;
 * showing that one would tell the operator a function is paused when it is simply gone.
 */
import { BreakerState } from '../ipc/messages.js';
import type { DeliveryStatus } from '../ipc/messages.js';

/** One function's breaker, named. */
export interface FunctionBreakerView {
  function: string;
  breaker: BreakerState;
  /** Date.now() of its last state change. */
  since: number;
  lastReason: string | null;
  /** Times it opened since the reporting child started. */
  opened: number;
}

/**
 * The functions whose breakers the views show: the configured `jobs_list` (`configured`), or, for a
 * pool removed from the config whose child still drains, every function that child reports.
 */
export function breakerFunctions(configured: readonly string[] | undefined, delivery: DeliveryStatus | null): readonly string[] {
  return configured ?? Object.keys(delivery?.functions ?? {});
}

/** The breakers the child has made for `functions` (those that ever failed), in `functions`' order. */
export function functionBreakers(delivery: DeliveryStatus | null, functions: readonly string[]): FunctionBreakerView[] {
  // A Map of own entries: a function named "constructor" or "__proto__" must not read Object.prototype.
  const reported = new Map(Object.entries(delivery?.functions ?? {}));
  const out: FunctionBreakerView[] = [];
  for (const name of functions) {
    const status = reported.get(name);
    if (status !== undefined) out.push({ function: name, breaker: status.breaker, since: status.since, lastReason: status.lastReason, opened: status.opened });
  }
  return out;
}

/** Open or half-open: the function is not registered with gearmand, or by one probe slot only. */
export function isPaused(breaker: Pick<FunctionBreakerView, 'breaker'>): boolean {
  return breaker.breaker !== BreakerState.CLOSED;
}

/** How many paused functions a /readyz reason names before "and N more". */
const NAMED_IN_REASON = 3;

/**
 * The /readyz reason when every one of the pool's functions is paused, else null. Half-open counts as
 * paused, as it does for the pool breaker: the pool then runs probe jobs only, and counting it as ready
 * would flip readiness at every probe of an outage that goes on.
 */
export function allPausedReason(breakers: readonly FunctionBreakerView[], functions: readonly string[]): string | null {
  if (functions.length === 0) return null;
  const paused = breakers.filter(isPaused);
  if (paused.length < functions.length) return null;
  const named = paused
    .slice(0, NAMED_IN_REASON)
    .map((b) => `${b.function} ${b.breaker} since ${new Date(b.since).toISOString()}${b.lastReason === null ? '' : ` (${b.lastReason})`}`);
  if (paused.length > NAMED_IN_REASON) named.push(`and ${paused.length - NAMED_IN_REASON} more`);
  return `every function is paused by its circuit breaker: ${named.join('; ')}`;
}
