import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, FdBudgetError } from '../../src/errors.js';
import { checkFdBudget, fdsNeeded, largestFdNeed, masterFdsNeeded, openFileLimit, RESERVED_FDS } from '../../src/config/fd-budget.js';
import { defaultPoolExtensions } from '../../src/config/types.js';
import type { JobsConfig, PoolConfig } from '../../src/config/types.js';

function pool(name: string, workerCount: number): PoolConfig {
  return { name, jobProcessingUri: 'http://x/', workerCount, jobsList: ['F'], requestFormat: 'json', maxRunningTimeMs: 1000, headers: {}, ...defaultPoolExtensions() };
}

function jobs(pools: PoolConfig[], serverCount: number): JobsConfig {
  const servers = Array.from({ length: serverCount }, (_, i) => ({ host: `g${i}`, port: 4730, label: `g${i}:4730` }));
  return { path: '/etc/jobs.json', servers, pools: Object.fromEntries(pools.map((p) => [p.name, p])) };
}

test('fdsNeeded should count slots × servers + one HTTP connection per slot + the reserve', () => {
  assert.equal(RESERVED_FDS, 32);
  assert.equal(fdsNeeded({ workerCount: 10_000 }, 2), 30_032);
  assert.equal(fdsNeeded({ workerCount: 4 }, 1), 4 + 4 + 32);
  assert.equal(fdsNeeded({ workerCount: 0 }, 5), 32);
  assert.equal(masterFdsNeeded(3), 3 * 4 + 32);
});

test('checkFdBudget should pass a config that fits exactly', () => {
  checkFdBudget(jobs([pool('Big', 10_000)], 2), 30_032);
  checkFdBudget(jobs([pool('Big', 10_000)], 2), Infinity);
});

test('checkFdBudget should refuse a pool that needs more than the limit, with both numbers', () => {
  assert.throws(
    () => checkFdBudget(jobs([pool('Small', 1), pool('Big', 10_000)], 2), 20_000),
    (error: unknown) => {
      assert.ok(error instanceof FdBudgetError);
      assert.equal(error.code, ErrorCode.FD_BUDGET);
      assert.equal(
        error.message,
        'pool "Big" needs 30032 file descriptors (10000 slots × 2 servers + 10000 HTTP connections + 32 reserved) ' +
          'but the open-file limit is 20000; raise it (ulimit -n) or lower worker_count',
      );
      return true;
    },
  );
});

test('checkFdBudget should count each pool on its own, since each runs in its own process', () => {
  // Together these need far more than 1100, but each pool's child needs only 1032.
  checkFdBudget(jobs([pool('A', 500), pool('B', 500), pool('C', 500)], 1), 1100);
});

test('checkFdBudget should name every pool that does not fit', () => {
  assert.throws(() => checkFdBudget(jobs([pool('A', 100), pool('B', 100)], 1), 200), {
    message:
      'pool "A" needs 232 file descriptors (100 slots × 1 servers + 100 HTTP connections + 32 reserved) but the open-file limit is 200; raise it (ulimit -n) or lower worker_count; ' +
      'pool "B" needs 232 file descriptors (100 slots × 1 servers + 100 HTTP connections + 32 reserved) but the open-file limit is 200; raise it (ulimit -n) or lower worker_count',
  });
});

test('checkFdBudget should refuse more pools than the master can hold pipes for', () => {
  const pools = Array.from({ length: 30 }, (_, i) => pool(`P${i}`, 0));
  assert.throws(() => checkFdBudget(jobs(pools, 1), 100), {
    code: ErrorCode.FD_BUDGET,
    message: 'the master process needs 152 file descriptors (30 pools × 4 pipes + 32 reserved) but the open-file limit is 100; raise it (ulimit -n) or use fewer pools',
  });
});

test('largestFdNeed should give the need of the hungriest process', () => {
  assert.equal(largestFdNeed(jobs([pool('A', 10), pool('B', 100)], 2)), 332);
  assert.equal(largestFdNeed(jobs([], 1)), 32);
});

test('openFileLimit should read this process\'s soft limit', () => {
  const limit = openFileLimit();
  assert.ok(limit === Infinity || (Number.isInteger(limit) && limit > 0), String(limit));
});
