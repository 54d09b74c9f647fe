/**
 * A pool's flow-control keys in the jobs config (docs/flow-control.md): `rate_limit` (new jobs per
 * second, with a burst) and `concurrency` (fixed, or adaptive with a floor). Both optional; a pool
 * without them behaves as every version before: no rate limit, worker_count slots taking jobs. Both
 * apply live on reload (pool-changes.ts).
 */
import { childPath } from './json-source.js';
import { Problems, checkKeys, isPlainObject, isSafeInteger } from './problems.js';
import { ConcurrencyMode, DEFAULT_CONCURRENCY } from './types.js';
import type { ConcurrencyPolicy, PoolConfig, RateLimit } from './types.js';

/** The per-pool keys this module reads, for the pool's list of allowed keys. */
export const POOL_FLOW_KEYS = ['rate_limit', 'concurrency'] as const;

const RATE_LIMIT_KEYS = { required: ['per_second'], optional: ['burst'] } as const;
const CONCURRENCY_KEYS = { required: [], optional: ['mode', 'min'] } as const;

/** Beyond a million a second, a limit limits nothing a pool could do. */
export const MAX_RATE_PER_SECOND = 1_000_000;
export const MAX_BURST = 1_000_000;
/** The highest concurrency.min worth writing: worker_count caps it anyway. */
export const MAX_CONCURRENCY_MIN = 100_000;

/**
 * burst when not given: a tenth of a second's worth, at least one, so any one-second span sees at most
 * per_second + burst new jobs, and a late timer loses no token.
 */
export function defaultBurst(perSecond: number): number {
  return Math.max(1, Math.ceil(perSecond / 10));
}

function readRateLimit(value: unknown, at: string, problems: Problems): RateLimit | null {
  if (value === undefined || value === null) return null;
  if (!isPlainObject(value)) {
    problems.expected(at, 'an object {"per_second": N, "burst": N}, or null for no limit', value);
    return null;
  }
  const before = problems.lines.length;
  checkKeys(value, at, RATE_LIMIT_KEYS, problems, { per_second: `a number of jobs per second > 0, at most ${MAX_RATE_PER_SECOND}` });
  const perSecond = value.per_second;
  const perSecondOk = typeof perSecond === 'number' && Number.isFinite(perSecond) && perSecond > 0 && perSecond <= MAX_RATE_PER_SECOND;
  if (Object.hasOwn(value, 'per_second') && !perSecondOk) {
    problems.expected(childPath(at, 'per_second'), `a number of jobs per second > 0, at most ${MAX_RATE_PER_SECOND} (0.5 = one job every 2 s)`, perSecond);
  }
  let burst = perSecondOk ? defaultBurst(perSecond) : 1;
  if (Object.hasOwn(value, 'burst')) {
    if (isSafeInteger(value.burst) && value.burst >= 1 && value.burst <= MAX_BURST) burst = value.burst;
    else problems.expected(childPath(at, 'burst'), `an integer from 1 to ${MAX_BURST}`, value.burst);
  }
  return problems.lines.length > before || !perSecondOk ? null : { perSecond, burst };
}

function readConcurrency(value: unknown, at: string, problems: Problems): ConcurrencyPolicy {
  const policy = { ...DEFAULT_CONCURRENCY };
  if (value === undefined) return policy;
  if (!isPlainObject(value)) {
    problems.expected(at, 'an object {"mode": "fixed" or "adaptive", "min": N}', value);
    return policy;
  }
  checkKeys(value, at, CONCURRENCY_KEYS, problems);
  if (Object.hasOwn(value, 'mode')) {
    if (value.mode === ConcurrencyMode.FIXED || value.mode === ConcurrencyMode.ADAPTIVE) policy.mode = value.mode;
    else problems.expected(childPath(at, 'mode'), '"fixed" or "adaptive"', value.mode);
  }
  if (Object.hasOwn(value, 'min')) {
    if (isSafeInteger(value.min) && value.min >= 1 && value.min <= MAX_CONCURRENCY_MIN) policy.min = value.min;
    else problems.expected(childPath(at, 'min'), `an integer from 1 to ${MAX_CONCURRENCY_MIN} (worker_count caps it)`, value.min);
  }
  return policy;
}

/** Reads a pool object's rate_limit and concurrency keys; `at` is the pool's JSON path. */
export function readPoolFlow(pool: Record<string, unknown>, at: string, problems: Problems): Pick<PoolConfig, 'rateLimit' | 'concurrency'> {
  return {
    rateLimit: readRateLimit(pool.rate_limit, childPath(at, 'rate_limit'), problems),
    concurrency: readConcurrency(pool.concurrency, childPath(at, 'concurrency'), problems),
  };
}
