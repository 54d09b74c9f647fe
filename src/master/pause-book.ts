/**
 * The master's record of what operators paused (docs/operations.md, Pause and resume): per pool, the
 * pool itself and any of its functions, each with when and by whom. It is the one place a pause lives:
 * every pool child gets its pool's pause with `init` and `reconfigure`, so a child restarted after a
 * crash, a recycle or a reload comes back paused from its first connect.
 *
 * What a pause survives: a child restart, a reload that keeps the pool (scaling it to 0 and back
 * included) and the function. A reload that removes the pool or the function drops it (prune). A daemon
 * restart forgets it: the record lives in the master's memory only (see the docs for why).
 */
import { poolNamed } from '../config/types.js';
import type { JobsConfig } from '../config/types.js';
import type { PauseState } from '../ipc/settings.js';
import type { PauseMark, PoolPauseView } from '../observe/observation.js';

interface PoolRecord {
  pool: PauseMark | null;
  functions: Map<string, PauseMark>;
}

export class PauseBook {
  readonly #pools = new Map<string, PoolRecord>();

  /** What `pool`'s child must apply. */
  stateOf(pool: string): PauseState {
    const record = this.#pools.get(pool);
    return { pool: record?.pool != null, functions: record === undefined ? [] : [...record.functions.keys()] };
  }

  /** The mark of the pause of `pool` (functionName null) or of one of its functions; null when not paused. */
  markOf(pool: string, functionName: string | null): PauseMark | null {
    const record = this.#pools.get(pool);
    if (record === undefined) return null;
    return functionName === null ? record.pool : (record.functions.get(functionName) ?? null);
  }

  /** Pauses; returns the earlier mark when it was paused already (which is kept). */
  pause(pool: string, functionName: string | null, mark: PauseMark): PauseMark | null {
    let record = this.#pools.get(pool);
    if (record === undefined) {
      record = { pool: null, functions: new Map() };
      this.#pools.set(pool, record);
    }
    const earlier = functionName === null ? record.pool : (record.functions.get(functionName) ?? null);
    if (earlier !== null) return earlier;
    if (functionName === null) record.pool = mark;
    else record.functions.set(functionName, mark);
    return null;
  }

  /** Resumes; returns the mark of the pause it ended, or null when it was not paused. */
  resume(pool: string, functionName: string | null): PauseMark | null {
    const record = this.#pools.get(pool);
    if (record === undefined) return null;
    const earlier = functionName === null ? record.pool : (record.functions.get(functionName) ?? null);
    if (functionName === null) record.pool = null;
    else record.functions.delete(functionName);
    if (record.pool === null && record.functions.size === 0) this.#pools.delete(pool);
    return earlier;
  }

  /** Drops the pauses of pools and functions `config` no longer has; returns what was dropped. */
  prune(config: JobsConfig): Array<{ pool: string; function: string | null; mark: PauseMark }> {
    const dropped: Array<{ pool: string; function: string | null; mark: PauseMark }> = [];
    for (const [name, record] of this.#pools) {
      const pool = poolNamed(config, name);
      const functions = new Set(pool?.jobsList ?? []);
      if (pool === undefined && record.pool !== null) dropped.push({ pool: name, function: null, mark: record.pool });
      for (const [fn, mark] of record.functions) {
        if (functions.has(fn)) continue;
        dropped.push({ pool: name, function: fn, mark });
        record.functions.delete(fn);
      }
      if (pool === undefined || (record.pool === null && record.functions.size === 0)) this.#pools.delete(name);
    }
    return dropped;
  }

  /** Every pool with something paused, for the status views; functions in `config`'s jobs_list order. */
  view(config: JobsConfig): ReadonlyMap<string, PoolPauseView> {
    const out = new Map<string, PoolPauseView>();
    for (const [name, record] of this.#pools) {
      const order = poolNamed(config, name)?.jobsList ?? [...record.functions.keys()];
      const functions = order.flatMap((fn) => {
        const mark = record.functions.get(fn);
        return mark === undefined ? [] : [{ function: fn, ...mark }];
      });
      out.set(name, { pool: record.pool, functions });
    }
    return out;
  }
}
