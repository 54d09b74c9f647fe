/**
 * What a reload changes (docs/operations.md, Signals and reload), computed from two validated configs without touching any process.
 * The master applies it: start `added`, stop `removed`, add or stop slots for `resized`, replace the
 * slots of `replaced`, leave `unchanged` alone (none of their connections may drop).
 *
 * What each setting's change needs is one table (pool-changes.ts) the pool child reads too: the master
 * only tells unchanged, resized and reconfigured pools apart; the child applies a reconfigured pool's
 * changes as that table says (new slots, a new runner, or live).
 */
import { PoolChange, poolChanges, sameServers } from './pool-changes.js';
import { poolNamed } from './types.js';
import type { JobsConfig } from './types.js';

export interface ConfigDiff {
  /** Pools only in the new config, in its order. */
  added: string[];
  /** Pools only in the old config, in its order. */
  removed: string[];
  /** Pools where worker_count is the only difference. */
  resized: Array<{ pool: string; from: number; to: number }>;
  /**
   * Pools whose slots must be replaced or given new settings: jobs_list, servers, URI, request_format,
   * max_running_time, headers, keep_alive, max_workload_bytes, max_response_bytes, trace_parent_field, any delivery setting, rate_limit, concurrency, the signing secrets,
   * the bearer token or the TLS settings changed (secrets compare by content: a rotated file counts,
   * a renamed one with the same content does not). The new
   * settings carry the new worker_count, whether or not it changed too.
   */
  replaced: string[];
  unchanged: string[];
}

export function diffJobsConfig(previous: JobsConfig, next: JobsConfig): ConfigDiff {
  const diff: ConfigDiff = { added: [], removed: [], resized: [], replaced: [], unchanged: [] };
  // Every slot connects to every server, so a server-list change touches every surviving pool.
  const serversChanged = !sameServers(previous.servers, next.servers);
  for (const name of Object.keys(previous.pools)) {
    if (poolNamed(next, name) === undefined) diff.removed.push(name);
  }
  for (const [name, pool] of Object.entries(next.pools)) {
    const old = poolNamed(previous, name);
    if (old === undefined) diff.added.push(name);
    else {
      const changes = poolChanges(old, pool);
      if (serversChanged || changes.has(PoolChange.SLOTS) || changes.has(PoolChange.RUNNER) || changes.has(PoolChange.LIVE)) diff.replaced.push(name);
      else if (changes.has(PoolChange.COUNT)) diff.resized.push({ pool: name, from: old.workerCount, to: pool.workerCount });
      else diff.unchanged.push(name);
    }
  }
  return diff;
}

/** True when applying the diff would change nothing. */
export function isEmptyDiff(diff: ConfigDiff): boolean {
  return diff.added.length + diff.removed.length + diff.resized.length + diff.replaced.length === 0;
}
