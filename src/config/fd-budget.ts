/**
 * File-descriptor budget (docs/configuration.md). The original aborted the whole process halfway through starting
 * workers when it ran out of descriptors; we refuse such a config up front instead, with both numbers.
 *
 * Each pool runs in its own child process, which inherits the master's limits, so the budget is per
 * process: a pool must fit in one process's limit on its own. The master holds a few descriptors per
 * child (IPC channel and stdio pipes) plus its logs and the status port.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { FdBudgetError } from '../errors.js';
import type { JobsConfig, PoolConfig } from './types.js';

/** stdio, the IPC channel, log files, libuv's internal pipes and eventfds, DNS lookups in flight. */
export const RESERVED_FDS = 32;
/** Per child in the master: the IPC channel plus stdin, stdout and stderr pipes. */
export const MASTER_FDS_PER_CHILD = 4;

/** The soft "Max open files" limit of this process; Infinity when unlimited or unknown. */
export function openFileLimit(): number {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const match = /^Max open files\s+(\S+)/m.exec(limits);
    if (match !== null) return parseLimit(match[1] as string);
  } catch {
    // No procfs (macOS, some containers): ask the shell instead.
  }
  const result = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8', timeout: 5000 });
  return result.status === 0 ? parseLimit(result.stdout.trim()) : Infinity;
}

function parseLimit(text: string): number {
  const value = Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : Infinity;
}

/**
 * Descriptors one pool's child needs: one Gearman socket per slot per server, at most one keep-alive
 * HTTP connection per slot (a slot runs one job at a time), and the fixed reserve.
 */
export function fdsNeeded(pool: Pick<PoolConfig, 'workerCount'>, serverCount: number): number {
  return pool.workerCount * serverCount + pool.workerCount + RESERVED_FDS;
}

/** Descriptors the master needs: its pipes to every child plus the fixed reserve. */
export function masterFdsNeeded(poolCount: number): number {
  return poolCount * MASTER_FDS_PER_CHILD + RESERVED_FDS;
}

function poolProblem(pool: PoolConfig, serverCount: number, limit: number): string | null {
  const needed = fdsNeeded(pool, serverCount);
  if (needed <= limit) return null;
  const n = pool.workerCount;
  return (
    `pool ${JSON.stringify(pool.name)} needs ${needed} file descriptors ` +
    `(${n} slots × ${serverCount} servers + ${n} HTTP connections + ${RESERVED_FDS} reserved) ` +
    `but the open-file limit is ${limit}; raise it (ulimit -n) or lower worker_count`
  );
}

function masterProblem(poolCount: number, limit: number): string | null {
  const needed = masterFdsNeeded(poolCount);
  if (needed <= limit) return null;
  return (
    `the master process needs ${needed} file descriptors ` +
    `(${poolCount} pools × ${MASTER_FDS_PER_CHILD} pipes + ${RESERVED_FDS} reserved) ` +
    `but the open-file limit is ${limit}; raise it (ulimit -n) or use fewer pools`
  );
}

/** Throws FdBudgetError naming every pool (and the master) that would not fit in `limit`. */
export function checkFdBudget(config: JobsConfig, limit: number = openFileLimit()): void {
  const serverCount = config.servers.length;
  const pools = Object.values(config.pools);
  const problems = pools.map((pool) => poolProblem(pool, serverCount, limit));
  problems.push(masterProblem(pools.length, limit));
  const found = problems.filter((problem): problem is string => problem !== null);
  if (found.length > 0) throw new FdBudgetError(found.join('; '));
}

/** The largest need of any one process, for --check's summary line. */
export function largestFdNeed(config: JobsConfig): number {
  const serverCount = config.servers.length;
  const poolNeeds = Object.values(config.pools).map((pool) => fdsNeeded(pool, serverCount));
  return Math.max(masterFdsNeeded(poolNeeds.length), ...poolNeeds);
}
