import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PoolChange, poolChanges } from '../../src/config/pool-changes.js';
import { defaultPoolExtensions } from '../../src/config/types.js';
import type { PoolConfig } from '../../src/config/types.js';

function pool(extra: Partial<PoolConfig> = {}): PoolConfig {
  return {
    name: 'P',
    jobProcessingUri: 'http://localhost/job.php',
    workerCount: 2,
    jobsList: ['Sum', 'Mul'],
    requestFormat: 'json',
    maxRunningTimeMs: 300_000,
    headers: { 'x-a': '1', 'x-b': '2' },
    ...defaultPoolExtensions(),
    signingKeys: ['a2V5MQ==', 'a2V5Mg=='],
    ...extra,
  };
}

test('poolChanges should name what each setting change needs: new slots, a new runner, live, or a resize', () => {
  const base = pool();
  const cases: Array<[string, Partial<PoolConfig>, PoolChange]> = [
    ['worker_count', { workerCount: 5 }, PoolChange.COUNT],
    ['jobs_list', { jobsList: ['Sum'] }, PoolChange.SLOTS],
    ['max_workload_bytes', { maxWorkloadBytes: 10 }, PoolChange.SLOTS],
    ['job_processing_uri', { jobProcessingUri: 'http://localhost/other.php' }, PoolChange.RUNNER],
    ['request_format', { requestFormat: 'multipart' }, PoolChange.RUNNER],
    ['max_running_time', { maxRunningTimeMs: 1000 }, PoolChange.RUNNER],
    ['headers', { headers: { 'x-a': '1' } }, PoolChange.RUNNER],
    ['keep_alive', { keepAlive: false }, PoolChange.RUNNER],
    ['max_response_bytes', { maxResponseBytes: 1024 }, PoolChange.RUNNER],
    ['signing_secrets', { signingKeys: ['a2V5MQ=='] }, PoolChange.RUNNER],
    ['bearer token', { bearerToken: 'token' }, PoolChange.RUNNER],
    ['tls', { tls: { ca: 'PEM', caFile: '/ca.pem', cert: null, certFile: null, key: null, keyFile: null, serverName: null } }, PoolChange.RUNNER],
    ['retry_on_status', { delivery: { ...base.delivery, retryOnStatus: [503] } }, PoolChange.RUNNER],
    ['max_attempts', { delivery: { ...base.delivery, maxAttempts: 2 } }, PoolChange.LIVE],
    ['max_retry_after', { delivery: { ...base.delivery, maxRetryAfterMs: 1 } }, PoolChange.LIVE],
    ['trace_parent_field', { traceParentField: 'tp' }, PoolChange.LIVE],
    ['rate_limit added', { rateLimit: { perSecond: 50, burst: 5 } }, PoolChange.LIVE],
    ['concurrency mode', { concurrency: { mode: 'adaptive', min: 2 } }, PoolChange.LIVE],
    ['concurrency min', { concurrency: { mode: 'fixed', min: 3 } }, PoolChange.LIVE],
  ];
  const limited = pool({ rateLimit: { perSecond: 50, burst: 5 } });
  assert.deepEqual([...poolChanges(limited, pool({ rateLimit: { perSecond: 20, burst: 5 } }))], [PoolChange.LIVE], 'rate_limit.per_second');
  assert.deepEqual([...poolChanges(limited, pool({ rateLimit: { perSecond: 50, burst: 5 } }))], [], 'the same rate_limit');
  for (const [what, change, need] of cases) assert.deepEqual([...poolChanges(base, pool(change))], [need], what);
});

test('poolChanges should ignore the order of sets and maps, and where a secret came from', () => {
  const base = pool();
  assert.deepEqual([...poolChanges(base, pool({ jobsList: ['Mul', 'Sum'] }))], []);
  assert.deepEqual([...poolChanges(base, pool({ headers: { 'x-b': '2', 'x-a': '1' } }))], []);
  assert.deepEqual([...poolChanges(base, pool({ signingKeys: ['a2V5Mg==', 'a2V5MQ=='] }))], []);
  assert.deepEqual([...poolChanges(base, pool({ delivery: { ...base.delivery, retryOnStatus: [...base.delivery.retryOnStatus].reverse() } }))], []);
  assert.deepEqual([...poolChanges(base, pool({ secretSources: [{ key: 'signing_secrets', kind: 'file', name: '/other' }] }))], []);
});

test('poolChanges should list every kind of change at once', () => {
  const changes = poolChanges(pool(), pool({ workerCount: 9, jobsList: ['Div'], keepAlive: false, traceParentField: 'tp' }));
  assert.deepEqual([...changes].sort(), [PoolChange.COUNT, PoolChange.LIVE, PoolChange.RUNNER, PoolChange.SLOTS].sort());
});
