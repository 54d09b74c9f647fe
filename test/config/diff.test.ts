import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffJobsConfig, isEmptyDiff } from '../../src/config/diff.js';
import { DEFAULT_DELIVERY, defaultPoolExtensions } from '../../src/config/types.js';
import type { DeliveryPolicy, JobsConfig, PoolConfig, ServerAddress } from '../../src/config/types.js';

function server(host: string, port = 4730): ServerAddress {
  return { host, port, label: `${host}:${port}` };
}

function pool(name: string, extra: Partial<PoolConfig> = {}): PoolConfig {
  return {
    name,
    jobProcessingUri: 'http://localhost/job.php',
    workerCount: 2,
    jobsList: ['Sum'],
    requestFormat: 'json',
    maxRunningTimeMs: 300_000,
    headers: {},
    ...defaultPoolExtensions(),
    ...extra,
  };
}

function jobs(pools: PoolConfig[], servers: ServerAddress[] = [server('localhost')]): JobsConfig {
  return { path: '/etc/jobs.json', servers, pools: Object.fromEntries(pools.map((p) => [p.name, p])) };
}

test('diffJobsConfig should find nothing to do between equal configs', () => {
  const diff = diffJobsConfig(jobs([pool('A'), pool('B')]), jobs([pool('A'), pool('B')]));
  assert.deepEqual(diff, { added: [], removed: [], resized: [], replaced: [], unchanged: ['A', 'B'] });
  assert.equal(isEmptyDiff(diff), true);
});

test('diffJobsConfig should list added and removed pools', () => {
  const diff = diffJobsConfig(jobs([pool('A'), pool('Old1'), pool('Old2')]), jobs([pool('New1'), pool('A'), pool('New2')]));
  assert.deepEqual(diff, { added: ['New1', 'New2'], removed: ['Old1', 'Old2'], resized: [], replaced: [], unchanged: ['A'] });
  assert.equal(isEmptyDiff(diff), false);
});

test('diffJobsConfig should mark a worker_count change alone as a resize', () => {
  const diff = diffJobsConfig(jobs([pool('Up'), pool('Down', { workerCount: 5 }), pool('Off')]), jobs([pool('Up', { workerCount: 8 }), pool('Down', { workerCount: 1 }), pool('Off', { workerCount: 0 })]));
  assert.deepEqual(diff.resized, [
    { pool: 'Up', from: 2, to: 8 },
    { pool: 'Down', from: 5, to: 1 },
    { pool: 'Off', from: 2, to: 0 },
  ]);
  assert.deepEqual(diff.replaced, []);
});

test('diffJobsConfig should replace a pool whose slot settings changed', () => {
  const before = jobs([pool('Jobs'), pool('Uri'), pool('Format'), pool('Time'), pool('Headers'), pool('Same')]);
  const after = jobs([
    pool('Jobs', { jobsList: ['Sum', 'Sum2'] }),
    pool('Uri', { jobProcessingUri: 'http://other/job.php' }),
    pool('Format', { requestFormat: 'multipart' }),
    pool('Time', { maxRunningTimeMs: 1000 }),
    pool('Headers', { headers: { authorization: 'x' } }),
    pool('Same'),
  ]);
  const diff = diffJobsConfig(before, after);
  assert.deepEqual(diff.replaced, ['Jobs', 'Uri', 'Format', 'Time', 'Headers']);
  assert.deepEqual(diff.unchanged, ['Same']);
});

test('diffJobsConfig should replace, not resize, a pool whose count and settings both changed', () => {
  const diff = diffJobsConfig(jobs([pool('A')]), jobs([pool('A', { workerCount: 9, jobProcessingUri: 'http://new/' })]));
  assert.deepEqual(diff.replaced, ['A']);
  assert.deepEqual(diff.resized, []);
});

test('diffJobsConfig should replace every surviving pool when the servers change', () => {
  const diff = diffJobsConfig(jobs([pool('A'), pool('B'), pool('Gone')]), jobs([pool('A'), pool('B', { workerCount: 7 }), pool('New')], [server('localhost'), server('10.0.0.2')]));
  assert.deepEqual(diff, { added: ['New'], removed: ['Gone'], resized: [], replaced: ['A', 'B'], unchanged: [] });
});

test('diffJobsConfig should ignore the order of servers, functions and headers', () => {
  const before = jobs([pool('A', { jobsList: ['X', 'Y'], headers: { a: '1', b: '2' } })], [server('g1'), server('g2')]);
  const after = jobs([pool('A', { jobsList: ['Y', 'X'], headers: { b: '2', a: '1' } })], [server('g2'), server('g1')]);
  assert.deepEqual(diffJobsConfig(before, after).unchanged, ['A']);
});

test('diffJobsConfig should notice a header value change and a removed header', () => {
  const before = jobs([pool('Value', { headers: { a: '1' } }), pool('Removed', { headers: { a: '1' } })]);
  const after = jobs([pool('Value', { headers: { a: '2' } }), pool('Removed', { headers: {} })]);
  assert.deepEqual(diffJobsConfig(before, after).replaced, ['Value', 'Removed']);
});

test('diffJobsConfig should notice a server port change', () => {
  const diff = diffJobsConfig(jobs([pool('A')], [server('g1', 4730)]), jobs([pool('A')], [server('g1', 4731)]));
  assert.deepEqual(diff.replaced, ['A']);
});

test('diffJobsConfig should replace a pool whose keep_alive or max_workload_bytes changed', () => {
  const before = jobs([pool('KeepAlive'), pool('Workload'), pool('Same')]);
  const after = jobs([pool('KeepAlive', { keepAlive: false }), pool('Workload', { maxWorkloadBytes: 1024 }), pool('Same')]);
  const diff = diffJobsConfig(before, after);
  assert.deepEqual(diff.replaced, ['KeepAlive', 'Workload']);
  assert.deepEqual(diff.unchanged, ['Same']);
});

test('diffJobsConfig should replace a pool whose max_response_bytes changed', () => {
  const diff = diffJobsConfig(jobs([pool('Limit'), pool('Same')]), jobs([pool('Limit', { maxResponseBytes: 1024 }), pool('Same')]));
  assert.deepEqual(diff.replaced, ['Limit']);
  assert.deepEqual(diff.unchanged, ['Same']);
});

test('diffJobsConfig should replace a pool whose trace_parent_field changed, so its child gets the new setting', () => {
  const before = jobs([pool('Traced'), pool('Same', { traceParentField: 'tp' })]);
  const after = jobs([pool('Traced', { traceParentField: 'traceparent' }), pool('Same', { traceParentField: 'tp' })]);
  const diff = diffJobsConfig(before, after);
  assert.deepEqual(diff.replaced, ['Traced']);
  assert.deepEqual(diff.unchanged, ['Same']);
});

test('diffJobsConfig should replace a pool when any one delivery field changed, also with a worker_count change', () => {
  const changes: Partial<DeliveryPolicy> = {
    mode: 'fail_fast',
    maxAttempts: 2,
    maxRetryDurationMs: 0,
    minBackoffMs: 200,
    maxBackoffMs: 9_000,
    maxDoublings: 0,
    retryOnStatus: [503],
    breakerThreshold: 0,
    breakerCooloffMs: 2_000,
    breakerMaxCooloffMs: 60_000,
    healthUrl: 'http://localhost/health',
    deadLetterFile: '/var/lib/driveshaft/dead.jsonl',
  };
  // Every field of the policy is exercised, so a field added later without a case here fails this.
  assert.deepEqual(Object.keys(changes).sort(), Object.keys(DEFAULT_DELIVERY).sort());
  for (const [field, value] of Object.entries(changes)) {
    const changed = pool('A', { delivery: { ...defaultPoolExtensions().delivery, [field]: value } });
    assert.deepEqual(diffJobsConfig(jobs([pool('A')]), jobs([changed])).replaced, ['A'], field);
    const resizedToo = { ...changed, workerCount: 7 };
    assert.deepEqual(diffJobsConfig(jobs([pool('A')]), jobs([resizedToo])).replaced, ['A'], `${field} with worker_count`);
  }
});

test('diffJobsConfig should ignore the order of retry_on_status', () => {
  const before = jobs([pool('A', { delivery: { ...defaultPoolExtensions().delivery, retryOnStatus: [429, 503] } })]);
  const after = jobs([pool('A', { delivery: { ...defaultPoolExtensions().delivery, retryOnStatus: [503, 429] } })]);
  assert.deepEqual(diffJobsConfig(before, after).unchanged, ['A']);
  const fewer = jobs([pool('A', { delivery: { ...defaultPoolExtensions().delivery, retryOnStatus: [503] } })]);
  assert.deepEqual(diffJobsConfig(before, fewer).replaced, ['A']);
});
