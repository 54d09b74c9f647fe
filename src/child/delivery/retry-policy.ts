/**
 * When a job's next attempt may start: the backoff between attempts of one job. Pure functions of the
 * pool's delivery policy, so the shape is tested without a slot, a socket or a timer.
 */
import type { DeliveryPolicy } from '../../config/types.js';

/**
 * Delay before retry number `retry` (1 for the first retry): the Cloud Tasks shape. min_backoff doubles
 * max_doublings times, then grows linearly by that last step, capped at max_backoff; ±25 % jitter so a
 * pool's retries do not arrive in lockstep. An endpoint's Retry-After / retry_after is a floor.
 */
export function retryDelayMs(policy: DeliveryPolicy, retry: number, askedMs: number | null, random: () => number = Math.random): number {
  const doublings = Math.min(retry - 1, policy.maxDoublings);
  const lastDoubled = policy.minBackoffMs * 2 ** doublings;
  const linearSteps = Math.max(0, retry - 1 - policy.maxDoublings);
  const base = Math.min(policy.maxBackoffMs, lastDoubled * (1 + linearSteps));
  const jittered = Math.min(policy.maxBackoffMs, base * (0.75 + 0.5 * random()));
  return Math.round(askedMs === null ? jittered : Math.max(jittered, askedMs));
}
