import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketIndex, HTTP_ERROR, HTTP_NONE, HTTP_TIMEOUT, JobMetrics, JobResult, OVERFLOW_FUNCTION } from '../../src/child/metrics.js';
import { DURATION_BUCKETS } from '../../src/ipc/metrics.js';

test('bucketIndex should put a duration in the first bucket whose upper bound is at least it (le is inclusive)', () => {
  assert.equal(bucketIndex(0), 0);
  assert.equal(bucketIndex(0.001), 0);
  assert.equal(bucketIndex(0.0011), 1);
  assert.equal(bucketIndex(1), DURATION_BUCKETS.indexOf(1));
  assert.equal(bucketIndex(60), DURATION_BUCKETS.length - 1);
  assert.equal(bucketIndex(60.5), DURATION_BUCKETS.length);
  assert.equal(bucketIndex(Infinity), DURATION_BUCKETS.length);
});

test('JobMetrics.record should count outcomes, buckets and the duration sum per function', () => {
  const metrics = new JobMetrics();
  metrics.record('Sum', JobResult.COMPLETED, 0.002, 200);
  metrics.record('Sum', JobResult.COMPLETED, 0.3, 200);
  metrics.record('Sum', JobResult.FAILED, 0.004, 500);
  metrics.record('Other', JobResult.TIMED_OUT, 90, HTTP_TIMEOUT);
  metrics.record('Other', JobResult.REQUEUED, 0.01, 200);
  metrics.record('Other', JobResult.FAILED, 0.02, HTTP_ERROR);
  metrics.record('Other', JobResult.FAILED, 0.03, HTTP_NONE);
  const snapshot = metrics.snapshot();
  const sum = snapshot.functions.Sum;
  assert.ok(sum !== undefined);
  assert.deepEqual([sum.completed, sum.failed, sum.timedOut, sum.requeued], [2, 1, 0, 0]);
  assert.equal(sum.buckets.length, DURATION_BUCKETS.length + 1);
  assert.equal(sum.buckets[1], 2, '0.002 and 0.004 in (0.001, 0.005]');
  assert.equal(sum.buckets[DURATION_BUCKETS.indexOf(0.5)], 1);
  assert.equal(sum.buckets.reduce((a, b) => a + b, 0), 3);
  assert.ok(Math.abs(sum.durationSum - 0.306) < 1e-12);
  const other = snapshot.functions.Other;
  assert.ok(other !== undefined);
  assert.deepEqual([other.completed, other.failed, other.timedOut, other.requeued], [0, 2, 1, 1]);
  assert.equal(other.buckets[DURATION_BUCKETS.length], 1, '90 s is above every bound');
  // HTTP_NONE (a shutdown abort before any response) is not an HTTP outcome.
  assert.deepEqual(snapshot.http, { '200': 3, '500': 1, timeout: 1, error: 1 });
});

test('JobMetrics.snapshot should be a copy that later jobs do not change', () => {
  const metrics = new JobMetrics();
  metrics.record('F', JobResult.COMPLETED, 0.5, 200);
  const first = metrics.snapshot();
  metrics.record('F', JobResult.COMPLETED, 0.5, 200);
  assert.equal(first.functions.F?.completed, 1);
  assert.equal(first.functions.F?.buckets.reduce((a, b) => a + b, 0), 1);
  assert.equal(first.http['200'], 1);
  assert.equal(metrics.snapshot().functions.F?.completed, 2);
});

test('JobMetrics.record should clamp a negative or NaN duration to zero', () => {
  const metrics = new JobMetrics();
  metrics.record('F', JobResult.COMPLETED, -1, 200);
  metrics.record('F', JobResult.COMPLETED, Number.NaN, 200);
  const f = metrics.snapshot().functions.F;
  assert.equal(f?.durationSum, 0);
  assert.equal(f?.buckets[0], 2);
});

test('JobMetrics.record should fold function names past its bound into one overflow series', () => {
  const metrics = new JobMetrics();
  for (let i = 0; i < 1030; i++) metrics.record(`fn${i}`, JobResult.COMPLETED, 0.001, 200);
  const snapshot = metrics.snapshot();
  assert.equal(Object.keys(snapshot.functions).length, 1025);
  assert.equal(snapshot.functions[OVERFLOW_FUNCTION]?.completed, 6);
});
