/**
 * WorkerPool lifecycle (docs/operations.md, Signals and reload): scale up/down while jobs run, slot replacement without a gap,
 * HTTP-only changes without dropping connections, drain and destroy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJsonJob, startEndpoint } from '../helpers/http-endpoint.js';
import { waitFor } from '../helpers/wait-for.js';
import { rig, waitForWorkers } from './fixtures.js';

const slow = (ms: number) => (req: { body: Buffer }) => {
  const workload = parseJsonJob(req.body).workload;
  return { delayMs: workload.startsWith('slow') ? ms : 0, body: { gearman_ret: 0, response_string: workload } };
};

test('WorkerPool.reconfigure should scale down while jobs run, stopping idle slots first', async (t) => {
  const r = await rig(t, { pool: { workerCount: 3 }, handler: slow(500) });
  const job = r.client.submit(r.fn, 'slow-1');
  await waitFor(() => r.endpoint.requests.length === 1 || undefined, { timeoutMs: 5000, message: 'the job to start' });
  const busy = r.pool.status().slots.find((s) => s.job !== null);
  assert.ok(busy !== undefined);
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, workerCount: 1 } });
  const status = r.pool.status();
  assert.equal(status.slots.find((s) => s.id === busy.id)?.stopping, false, 'the busy slot is kept');
  assert.equal(status.slots.filter((s) => s.stopping).length, 2);
  const result = await job;
  assert.equal(result.outcome, 'complete');
  await waitForWorkers(r.gearmand, r.fn, 1);
  await waitFor(() => r.pool.status().slots.length === 1 || undefined, { timeoutMs: 5000, message: 'one slot left' });
});

test('WorkerPool.reconfigure should let a stopped slot finish its running job', async (t) => {
  const r = await rig(t, { pool: { workerCount: 2 }, handler: slow(500) });
  const jobs = [r.client.submit(r.fn, 'slow-a'), r.client.submit(r.fn, 'slow-b')];
  await waitFor(() => r.endpoint.requests.length === 2 || undefined, { timeoutMs: 5000, message: 'both jobs to start' });
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, workerCount: 1 } });
  const stopping = r.pool.status().slots.filter((s) => s.stopping);
  assert.equal(stopping.length, 1);
  assert.ok(stopping[0]?.job !== null, 'a busy slot had to be chosen');
  for (const result of await Promise.all(jobs)) assert.equal(result.outcome, 'complete');
  await waitForWorkers(r.gearmand, r.fn, 1);
  assert.equal(r.pool.status().counters.jobs_failed, 0);
  // The survivor still serves.
  assert.equal((await r.client.submit(r.fn, 'after')).result?.toString(), 'after');
});

test('WorkerPool.reconfigure should scale up while a job runs, with HTTP connections to match', async (t) => {
  const r = await rig(t, { pool: { workerCount: 1 }, handler: slow(400) });
  const first = r.client.submit(r.fn, 'slow-0');
  await waitFor(() => r.endpoint.requests.length === 1 || undefined, { timeoutMs: 5000, message: 'the job to start' });
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, workerCount: 4 } });
  await waitForWorkers(r.gearmand, r.fn, 4);
  const more = [1, 2, 3].map((i) => r.client.submit(r.fn, `slow-${i}`));
  await waitFor(() => r.endpoint.requests.length === 4 || undefined, { timeoutMs: 2000, message: 'four jobs running at once' });
  for (const result of await Promise.all([first, ...more])) assert.equal(result.outcome, 'complete');
  assert.equal(r.pool.status().slots.length, 4);
});

test('WorkerPool.reconfigure should replace slots for a new jobs_list without a gap and finish running jobs', async (t) => {
  const r = await rig(t, { pool: { workerCount: 2 }, handler: slow(400) });
  const running = r.client.submit(r.fn, 'slow-old');
  await waitFor(() => r.endpoint.requests.length === 1 || undefined, { timeoutMs: 5000, message: 'the job to start' });
  const oldIds = new Set(r.pool.status().slots.map((s) => s.id));
  // Sample the pool continuously: some slot must be registered and serving at every moment.
  let gap = false;
  const sampler = setInterval(() => {
    if (!r.pool.status().slots.some((s) => !s.stopping && s.connectedServers > 0)) gap = true;
  }, 1);
  t.after(() => clearInterval(sampler));
  const newFn = `${r.fn}-v2`;
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, jobsList: [newFn] } });
  await waitForWorkers(r.gearmand, newFn, 2);
  assert.equal((await running).outcome, 'complete', 'the running job of a replaced slot completes');
  await waitForWorkers(r.gearmand, r.fn, 0);
  clearInterval(sampler);
  assert.equal(gap, false, 'the pool was never without a serving slot');
  // gearmand forgets a worker when it reads the old slot's FIN; the slot itself counts as stopping
  // until its socket's close arrives back, a moment later.
  const status = await waitFor(() => {
    const now = r.pool.status();
    return now.slots.length === 2 ? now : undefined;
  }, { timeoutMs: 5000, message: 'the replaced slots to finish closing' });
  assert.ok(status.slots.every((s) => !oldIds.has(s.id)));
  assert.equal((await r.client.submit(newFn, 'new')).result?.toString(), 'new');
});

test('WorkerPool.reconfigure should switch the URI without dropping gearmand connections', async (t) => {
  const r = await rig(t, { pool: { workerCount: 2 } });
  const other = await startEndpoint(() => ({ body: { gearman_ret: 0, response_string: 'other' } }));
  t.after(() => other.close());
  const fds = async (): Promise<string[]> => (await r.gearmand.workers()).filter((w) => w.functions.includes(r.fn)).map((w) => w.fd).sort();
  const before = await fds();
  const ids = r.pool.status().slots.map((s) => s.id);
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, jobProcessingUri: other.url, headers: { 'x-new': '1' }, requestFormat: 'multipart' } });
  const result = await r.client.submit(r.fn, 'x');
  assert.equal(result.result?.toString(), 'other');
  assert.equal(other.requests[0]?.headers['x-new'], '1');
  assert.match(String(other.requests[0]?.headers['content-type']), /^multipart\/form-data; boundary=/);
  assert.deepEqual(await fds(), before, 'same gearmand connections');
  assert.deepEqual(r.pool.status().slots.map((s) => s.id), ids, 'same slots');
});

test('WorkerPool.reconfigure should refuse invalid settings and keep running', async (t) => {
  const r = await rig(t);
  assert.throws(() => r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, workerCount: -1 } }), { code: 'DS_CONFIG' });
  assert.throws(() => r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, jobProcessingUri: 'ftp://x/' } }), { code: 'DS_CONFIG' });
  assert.equal((await r.client.submit(r.fn, 'x')).outcome, 'complete');
});

test('WorkerPool.drain should let short jobs finish, WORK_FAIL long ones at the deadline, and close', async (t) => {
  const r = await rig(t, {
    pool: { workerCount: 2 },
    handler: (req) => {
      const workload = parseJsonJob(req.body).workload;
      return { delayMs: workload === 'long' ? 5000 : 150, body: { gearman_ret: 0, response_string: workload } };
    },
  });
  const short = r.client.submit(r.fn, 'short');
  const long = r.client.submit(r.fn, 'long');
  await waitFor(() => r.endpoint.requests.length === 2 || undefined, { timeoutMs: 5000, message: 'both jobs to start' });
  const start = performance.now();
  const drained = r.pool.drain(400);
  assert.ok(r.pool.status().slots.every((s) => s.stopping));
  assert.equal((await short).outcome, 'complete');
  const longResult = await long;
  const failedAfter = performance.now() - start;
  assert.equal(longResult.outcome, 'fail');
  assert.ok(failedAfter >= 390 && failedAfter < 700, `failed ${failedAfter} ms into a 400 ms drain`);
  await drained;
  assert.equal(r.pool.state, 'stopped');
  await waitForWorkers(r.gearmand, r.fn, 0);
  // Nothing new was grabbed: a job submitted now stays queued.
  const queued = r.client.submit(r.fn, 'late', { background: true });
  await queued;
  assert.equal(r.endpoint.requests.length, 2);
});

test('WorkerPool.destroy should WORK_FAIL running jobs at once', async (t) => {
  const r = await rig(t, { handler: () => ({ delayMs: 5000, body: { gearman_ret: 0, response_string: 'x' } }) });
  const job = r.client.submit(r.fn, 'x');
  await waitFor(() => r.endpoint.requests.length === 1 || undefined, { timeoutMs: 5000, message: 'the job to start' });
  const start = performance.now();
  await r.pool.destroy();
  const result = await job;
  assert.equal(result.outcome, 'fail');
  assert.ok(performance.now() - start < 300);
  assert.ok(r.logger.find('job failed').some((rec) => rec.cause === 'shutdown'));
  await waitForWorkers(r.gearmand, r.fn, 0);
});

test('WorkerPool with worker_count 0 should register nothing and report no slots', async (t) => {
  const r = await rig(t, { pool: { workerCount: 0 }, waitWorkers: 0 });
  assert.deepEqual(r.pool.status().slots, []);
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, workerCount: 1 } });
  await waitForWorkers(r.gearmand, r.fn, 1);
  assert.equal((await r.client.submit(r.fn, 'x')).outcome, 'complete');
});
