/**
 * What a change of each pool setting needs, in one table read by both sides of a reload: the master's
 * diff (diff.ts: is the pool unchanged, resized or to be reconfigured?) and the pool child
 * (worker-pool.ts: new slots, a new HTTP runner, or a value read live at the next decision?).
 *
 * - SLOTS: the Gearman side (what the slots register, how they read): new slots replace the old ones
 *   once registered; no job is dropped.
 * - RUNNER: the HTTP side: new attempts use a new runner, attempts in flight finish on the old one, no
 *   Gearman connection drops.
 * - LIVE: read at each decision (delivery policy, breaker thresholds, tracing, rate limit and
 *   concurrency): applied in place.
 * - COUNT: worker_count: slots are added or stopped.
 *
 * Lists whose order changes nothing a slot does (jobs_list, the servers, retry_on_status, the signing
 * secrets) compare as sets, headers as a map, TLS and secrets by content: a renewed certificate under
 * the same file name is a change, a renamed file with the same content is not. The table is typed
 * against every key of PoolConfig, so a new key does not compile until someone says what it needs.
 */
import type { ConcurrencyPolicy, DeliveryPolicy, PoolConfig, PoolTls, RateLimit, ServerAddress } from './types.js';

export const PoolChange = {
  COUNT: 'count',
  LIVE: 'live',
  RUNNER: 'runner',
  SLOTS: 'slots',
} as const;
export type PoolChange = (typeof PoolChange)[keyof typeof PoolChange];

type Compare<T> = (a: T, b: T) => PoolChange | null;

function sameSet(a: readonly unknown[], b: readonly unknown[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((item) => right.has(item));
}

function sameRecord<T extends object>(a: T, b: T): boolean {
  const keys = Object.keys(a) as Array<keyof T>;
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key]);
}

const value =
  (need: PoolChange): Compare<unknown> =>
  (a, b) =>
    a === b ? null : need;
const set =
  (need: PoolChange): Compare<readonly unknown[]> =>
  (a, b) =>
    sameSet(a, b) ? null : need;

const sameTls: Compare<PoolTls | null> = (a, b) => {
  if (a === null || b === null) return a === b ? null : PoolChange.RUNNER;
  return sameRecord(a, b) ? null : PoolChange.RUNNER;
};

/** retry_on_status is read by the runner (it tells a transient status from a failure); the rest live. */
const sameDelivery: Compare<DeliveryPolicy> = (a, b) => {
  if (!sameSet(a.retryOnStatus, b.retryOnStatus)) return PoolChange.RUNNER;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof DeliveryPolicy>;
  for (const key of keys) {
    if (key !== 'retryOnStatus' && a[key] !== b[key]) return PoolChange.LIVE;
  }
  return null;
};

/** Flow control is the admission gate's, which changes its bucket and its limit in place. */
const sameRateLimit: Compare<RateLimit | null> = (a, b) => {
  if (a === null || b === null) return a === b ? null : PoolChange.LIVE;
  return sameRecord(a, b) ? null : PoolChange.LIVE;
};
const sameConcurrency: Compare<ConcurrencyPolicy> = (a, b) => (sameRecord(a, b) ? null : PoolChange.LIVE);

const POOL_SETTINGS: { readonly [K in keyof PoolConfig]: Compare<PoolConfig[K]> | null } = {
  /** The pool's identity: a different name is a different pool, never a change. */
  name: null,
  workerCount: value(PoolChange.COUNT),
  jobsList: set(PoolChange.SLOTS),
  maxWorkloadBytes: value(PoolChange.SLOTS),
  jobProcessingUri: value(PoolChange.RUNNER),
  requestFormat: value(PoolChange.RUNNER),
  maxRunningTimeMs: value(PoolChange.RUNNER),
  headers: (a, b) => (sameRecord(a, b) ? null : PoolChange.RUNNER),
  keepAlive: value(PoolChange.RUNNER),
  maxResponseBytes: value(PoolChange.RUNNER),
  signingKeys: set(PoolChange.RUNNER),
  bearerToken: value(PoolChange.RUNNER),
  tls: sameTls,
  delivery: sameDelivery,
  traceParentField: value(PoolChange.LIVE),
  rateLimit: sameRateLimit,
  concurrency: sameConcurrency,
  /** Where the secrets came from: their content is compared where they are used. */
  secretSources: null,
};

/** Every kind of change between two versions of one pool (empty: nothing to do). */
export function poolChanges(a: PoolConfig, b: PoolConfig): Set<PoolChange> {
  const changes = new Set<PoolChange>();
  for (const key of Object.keys(POOL_SETTINGS) as Array<keyof PoolConfig>) {
    const compare = POOL_SETTINGS[key] as Compare<unknown> | null;
    const change = compare?.(a[key], b[key]) ?? null;
    if (change !== null) changes.add(change);
  }
  return changes;
}

/** Every slot connects to every server, so a change of the server list is a SLOTS change of every pool. */
export function sameServers(a: readonly ServerAddress[], b: readonly ServerAddress[]): boolean {
  return sameSet(
    a.map((server) => server.label),
    b.map((server) => server.label),
  );
}
