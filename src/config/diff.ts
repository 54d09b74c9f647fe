/**
 * What a reload changes (docs/operations.md, Signals and reload), computed from two validated configs without touching any process.
 * The master applies it: start `added`, stop `removed`, add or stop slots for `resized`, replace the
 * slots of `replaced`, leave `unchanged` alone (none of their connections may drop).
 *
 * Decisions: jobs_list and the server list are compared as sets, and headers as a map, because their
 * order changes nothing a slot does (CAN_DO registrations and per-server connections are unordered);
 * reordering a file must not disturb a running pool.
 */
import type { DeliveryPolicy, JobsConfig, PoolConfig, PoolTls, ServerAddress } from './types.js';

export interface ConfigDiff {
  /** Pools only in the new config, in its order. */
  added: string[];
  /** Pools only in the old config, in its order. */
  removed: string[];
  /** Pools where worker_count is the only difference. */
  resized: Array<{ pool: string; from: number; to: number }>;
  /**
   * Pools whose slots must be replaced or given new settings: jobs_list, servers, URI, request_format,
   * max_running_time, headers, keep_alive, max_workload_bytes, trace_parent_field, any delivery setting, the signing secrets,
   * the bearer token or the TLS settings changed (secrets compare by content: a rotated file counts,
   * a renamed one with the same content does not). The new
   * settings carry the new worker_count, whether or not it changed too.
   */
  replaced: string[];
  unchanged: string[];
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((item) => right.has(item));
}

function sameHeaders(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key]);
}

function sameServers(a: readonly ServerAddress[], b: readonly ServerAddress[]): boolean {
  return sameSet(
    a.map((server) => server.label),
    b.map((server) => server.label),
  );
}

/**
 * Field by field over both policies' keys, so a field added to DeliveryPolicy later counts without
 * touching this; retry_on_status is a set (its order changes nothing).
 */
function sameDelivery(a: DeliveryPolicy, b: DeliveryPolicy): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof DeliveryPolicy>;
  return [...keys].every((key) => {
    const left: unknown = a[key];
    const right: unknown = b[key];
    if (Array.isArray(left) && Array.isArray(right)) return sameSet(left.map(String), right.map(String));
    return left === right;
  });
}

/** Field by field, content included: a renewed certificate under the same file name is a change. */
function sameTls(a: PoolTls | null, b: PoolTls | null): boolean {
  if (a === null || b === null) return a === b;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof PoolTls>;
  return [...keys].every((key) => a[key] === b[key]);
}

/** True when the two pools differ in anything a running slot depends on (everything but the count). */
function slotSettingsDiffer(a: PoolConfig, b: PoolConfig): boolean {
  return (
    a.jobProcessingUri !== b.jobProcessingUri ||
    a.requestFormat !== b.requestFormat ||
    a.maxRunningTimeMs !== b.maxRunningTimeMs ||
    !sameSet(a.jobsList, b.jobsList) ||
    !sameHeaders(a.headers, b.headers) ||
    a.keepAlive !== b.keepAlive ||
    a.maxWorkloadBytes !== b.maxWorkloadBytes ||
    a.traceParentField !== b.traceParentField ||
    !sameDelivery(a.delivery, b.delivery) ||
    !sameSet(a.signingKeys, b.signingKeys) ||
    a.bearerToken !== b.bearerToken ||
    !sameTls(a.tls, b.tls)
  );
}

export function diffJobsConfig(previous: JobsConfig, next: JobsConfig): ConfigDiff {
  const diff: ConfigDiff = { added: [], removed: [], resized: [], replaced: [], unchanged: [] };
  // Every slot connects to every server, so a server-list change touches every surviving pool.
  const serversChanged = !sameServers(previous.servers, next.servers);
  for (const name of Object.keys(previous.pools)) {
    if (!Object.hasOwn(next.pools, name)) diff.removed.push(name);
  }
  for (const [name, pool] of Object.entries(next.pools)) {
    const old = Object.hasOwn(previous.pools, name) ? previous.pools[name] : undefined;
    if (old === undefined) diff.added.push(name);
    else if (serversChanged || slotSettingsDiffer(old, pool)) diff.replaced.push(name);
    else if (old.workerCount !== pool.workerCount) diff.resized.push({ pool: name, from: old.workerCount, to: pool.workerCount });
    else diff.unchanged.push(name);
  }
  return diff;
}

/** True when applying the diff would change nothing. */
export function isEmptyDiff(diff: ConfigDiff): boolean {
  return diff.added.length + diff.removed.length + diff.resized.length + diff.replaced.length === 0;
}
