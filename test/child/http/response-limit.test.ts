/**
 * A pool's max_response_bytes: a response body over it fails the job, and a reload that changes it
 * takes effect for the next job on a new HTTP runner, the Gearman connections untouched.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_DELIVERY, DeliveryMode } from '../../../src/config/types.js';
import { rig } from '../fixtures.js';

const FAIL_FAST = { ...DEFAULT_DELIVERY, mode: DeliveryMode.FAIL_FAST };

test("WorkerPool should fail a response over the pool's max_response_bytes, and apply a new limit on reload without reconnecting to gearmand", async (t) => {
  const r = await rig(t, { pool: { maxResponseBytes: 4096, delivery: FAIL_FAST }, handler: () => ({ body: { gearman_ret: 0, response_string: 'x'.repeat(8192) } }) });
  assert.equal((await r.client.submit(r.fn, 'x')).outcome, 'fail');
  assert.match(String(r.logger.find('job failed')[0]?.reason), /^response body is over max_response_bytes \(4096\)$/);

  const workersBefore = (await r.gearmand.workers()).map((worker) => worker.fd);
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, maxResponseBytes: 16_384 } });
  const result = await r.client.submit(r.fn, 'x');
  assert.equal(result.outcome, 'complete');
  assert.equal(result.result?.length, 8192);
  assert.deepEqual((await r.gearmand.workers()).map((worker) => worker.fd), workersBefore, 'the same Gearman connections');
});
