/**
 * Delivery: what a pool does when the endpoint cannot take a job right now. Real gearmand, real HTTP
 * endpoint (really stopped, answering 503, or hanging), a WorkerPool in this process, and a Gearman
 * client that sees what users' clients see.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_DELIVERY } from '../../src/config/types.js';
import type { DeliveryPolicy } from '../../src/config/types.js';
import { retryDelayMs } from '../../src/child/delivery/retry-policy.js';
import { parseJsonJob, startEndpoint } from '../helpers/http-endpoint.js';
import type { Endpoint, EndpointHandler } from '../helpers/http-endpoint.js';
import { waitFor } from '../helpers/wait-for.js';
import { rig } from './fixtures.js';
import type { Rig } from './fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';

const OK = { body: { gearman_ret: 0, response_string: 'ok' } };

function policy(overrides: Partial<DeliveryPolicy>): DeliveryPolicy {
  return { ...DEFAULT_DELIVERY, retryOnStatus: [...DEFAULT_DELIVERY.retryOnStatus], ...overrides };
}

/** Distinct uniques the endpoint answered 200 for, and how many answers each got. */
function answeredOk(endpoint: Endpoint, okSince: number): Map<string, number> {
  const seen = new Map<string, number>();
  for (const request of endpoint.requests.slice(okSince)) {
    const unique = parseJsonJob(request.body).unique;
    seen.set(unique, (seen.get(unique) ?? 0) + 1);
  }
  return seen;
}

async function queued(r: Rig): Promise<number> {
  const status = (await r.gearmand.status()).find((f) => f.function === r.fn);
  return status === undefined ? 0 : status.total;
}

test('retryDelayMs should double from min_backoff max_doublings times, then grow linearly, capped, with jitter and Retry-After as a floor', () => {
  const p = policy({ minBackoffMs: 10_000, maxBackoffMs: 300_000, maxDoublings: 3 });
  const middle = (): number => 0.5; // no jitter
  // Cloud Tasks' documented example: 10, 20, 40, 80, 160, 240, 300, 300 s.
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8].map((retry) => retryDelayMs(p, retry, null, middle) / 1000),
    [10, 20, 40, 80, 160, 240, 300, 300],
  );
  assert.equal(retryDelayMs(p, 1, null, () => 0), 7500);
  assert.equal(retryDelayMs(p, 1, null, () => 0.999_999), 12_500);
  assert.equal(retryDelayMs(p, 8, null, () => 0.999_999), 300_000, 'jitter never exceeds max_backoff');
  assert.equal(retryDelayMs(p, 1, 60_000, middle), 60_000, 'Retry-After is honoured');
  assert.equal(retryDelayMs(p, 4, 1_000, middle), 80_000, 'but never shortens the backoff');
});

test('a transient status is retried in place with attempt headers, and the client never sees it', async (t) => {
  let calls = 0;
  const r = await rig(t, { pool: { delivery: policy({ minBackoffMs: 20, maxBackoffMs: 50 }) }, handler: () => (++calls <= 2 ? { status: 503 } : OK) });
  const result = await r.client.submit(r.fn, 'w', { unique: 'retry-me' });
  assert.equal(result.outcome, 'complete');
  assert.equal(r.endpoint.requests.length, 3);
  assert.deepEqual(
    r.endpoint.requests.map((q) => q.headers['driveshaft-attempt']),
    ['1', '2', '3'],
  );
  const first = r.endpoint.requests.map((q) => q.headers['driveshaft-first-attempt']);
  assert.ok(first.every((value) => value === first[0]), `one first-attempt time for every attempt: ${first.join(', ')}`);
  assert.ok(!Number.isNaN(Date.parse(String(first[0]))));
  assert.ok(r.endpoint.requests.every((q) => parseJsonJob(q.body).unique === 'retry-me'), 'the unique, the idempotency key, is the same on every attempt');
  const counters = r.pool.status().counters;
  assert.equal(counters.jobs_retried, 2);
  assert.equal(counters.jobs_failed, 0);
  assert.equal(counters.jobs_completed, 1);
  assert.equal(counters.http_errors, 2);
});

test('Retry-After on a 503 and retry_after in an answer are honoured', async (t) => {
  let calls = 0;
  const r = await rig(t, {
    pool: { delivery: policy({ minBackoffMs: 10, maxBackoffMs: 20 }) },
    handler: () => {
      calls++;
      if (calls === 1) return { status: 503, headers: { 'Retry-After': '1' } };
      if (calls === 2) return { body: { gearman_ret: 1, retry_after: 0.4 } };
      return OK;
    },
  });
  const result = await r.client.submit(r.fn, 'w');
  assert.equal(result.outcome, 'complete');
  const [a, b, c] = r.endpoint.requests.map((q) => q.receivedAt);
  assert.ok(a !== undefined && b !== undefined && c !== undefined);
  assert.ok(b - a >= 990, `second attempt ${b - a} ms after the first; Retry-After said 1 s`);
  assert.ok(c - b >= 390, `third attempt ${c - b} ms after the second; retry_after said 0.4 s`);
  assert.equal(r.pool.status().delivery?.breaker, 'closed');
});

test('a permanent failure is never retried', async (t) => {
  const r = await rig(t, { pool: { delivery: policy({ minBackoffMs: 10 }) }, handler: () => ({ status: 500 }) });
  for (const answer of [{ status: 500 }, { status: 404 }, { body: { gearman_ret: 1 } }, { body: 'not json' }]) {
    r.endpoint.setHandler(() => answer);
    const before = r.endpoint.requests.length;
    assert.equal((await r.client.submit(r.fn, 'w')).outcome, 'fail');
    assert.equal(r.endpoint.requests.length - before, 1, `${JSON.stringify(answer)} was posted once`);
  }
  assert.equal(r.pool.status().counters.jobs_retried, 0);
});

test('a job that keeps failing transiently while the breaker stays closed gives up after max_attempts', async (t) => {
  const r = await rig(t, { pool: { delivery: policy({ maxAttempts: 3, minBackoffMs: 10, breakerThreshold: 0 }) }, handler: () => ({ status: 503 }) });
  assert.equal((await r.client.submit(r.fn, 'poison')).outcome, 'fail');
  assert.equal(r.endpoint.requests.length, 3);
  assert.ok(r.logger.find('job failed').some((rec) => /gave up after 3 attempts: endpoint answered HTTP 503/.test(String(rec.reason))));
});

test('an endpoint that hangs past max_running_time is retried, and the job completes once it answers', async (t) => {
  let calls = 0;
  const r = await rig(t, {
    pool: { maxRunningTimeMs: 300, delivery: policy({ minBackoffMs: 10 }) },
    handler: () => (++calls === 1 ? { delayMs: 5000, ...OK } : OK),
  });
  const result = await r.client.submit(r.fn, 'w');
  assert.equal(result.outcome, 'complete');
  assert.equal(r.endpoint.requests.length, 2);
  assert.equal(r.pool.status().counters.jobs_timed_out, 0);
});

test('a stopped endpoint opens the breaker: jobs stay queued in gearmand unfailed, and all complete once it is back', async (t) => {
  const r = await rig(t, {
    pool: { workerCount: 4, delivery: policy({ minBackoffMs: 20, breakerThreshold: 3, breakerCooloffMs: 300, breakerMaxCooloffMs: 300 }) },
    logLevel: 'info',
  });
  const port = r.endpoint.port;
  await r.endpoint.close();
  const jobs = 40;
  for (let i = 0; i < jobs; i++) await r.client.submit(r.fn, `job ${i}`, { unique: `u${i}`, background: true });
  await waitFor(() => r.pool.status().delivery?.breaker === 'open' || undefined, { timeoutMs: 5000, message: 'the breaker to open' });
  assert.equal(r.logger.find('circuit breaker opened').length, 1, 'one line says it opened');
  // While the endpoint is down the jobs wait in gearmand: none is failed.
  await waitFor(async () => ((await queued(r)) === jobs ? true : undefined), { timeoutMs: 5000, message: `all ${jobs} jobs queued in gearmand` });
  assert.equal(r.pool.status().counters.jobs_failed, 0);
  assert.ok(r.pool.status().counters.jobs_handed_back >= 1);

  const back = await startEndpoint(() => OK, { port });
  t.after(() => back.close());
  await waitFor(() => (answeredOk(back, 0).size === jobs ? true : undefined), { timeoutMs: 15_000, message: `all ${jobs} jobs answered by the restarted endpoint` });
  await waitFor(async () => ((await queued(r)) === 0 ? true : undefined), { timeoutMs: 5000, message: 'gearmand to have no job left' });
  const counters = r.pool.status().counters;
  assert.equal(counters.jobs_failed, 0);
  assert.equal(counters.jobs_completed, jobs);
  await waitFor(() => r.pool.status().delivery?.breaker === 'closed' || undefined, { timeoutMs: 5000, message: 'the breaker to close' });
  assert.equal(r.logger.find('circuit breaker closed').length, 1);
});

test('an open breaker sends nothing but probes, and a failed probe re-opens it', async (t) => {
  const r = await rig(t, {
    pool: { workerCount: 4, delivery: policy({ minBackoffMs: 20, breakerThreshold: 2, breakerCooloffMs: 400, breakerMaxCooloffMs: 400 }) },
    handler: () => ({ status: 503 }),
  });
  for (let i = 0; i < 20; i++) await r.client.submit(r.fn, `job ${i}`, { background: true });
  await waitFor(() => r.pool.status().delivery?.breaker === 'open' || undefined, { timeoutMs: 5000, message: 'the breaker to open' });
  const openedAt = r.endpoint.requests.length;
  const windowMs = 2000;
  await new Promise((resolve) => setTimeout(resolve, windowMs)); // the measured window is the point of this test
  const sent = r.endpoint.requests.length - openedAt;
  // One probe per 400 ms cool-off at most (each probe is one real job's single attempt).
  assert.ok(sent <= Math.ceil(windowMs / 400) + 1, `${sent} requests in ${windowMs} ms while open`);
  assert.ok(sent >= 2, `probes were sent (${sent})`);
  assert.ok(r.pool.status().delivery?.opened === 1, 'a failed probe re-opens without counting a new opening');
  assert.equal(r.pool.status().counters.jobs_failed, 0);
});

test('a health_url probe decides instead of a real job: no POST while open', async (t) => {
  let healthy = false;
  const health = await startEndpoint(() => (healthy ? OK : { status: 503 }));
  t.after(() => health.close());
  let down = true;
  const r = await rig(t, {
    pool: { workerCount: 2, delivery: policy({ minBackoffMs: 20, breakerThreshold: 2, breakerCooloffMs: 200, breakerMaxCooloffMs: 200, healthUrl: `${health.url}/health` }) },
    handler: () => (down ? { status: 502 } : OK),
  });
  for (let i = 0; i < 10; i++) await r.client.submit(r.fn, `job ${i}`, { unique: `h${i}`, background: true });
  await waitFor(() => r.pool.status().delivery?.breaker === 'open' || undefined, { timeoutMs: 5000, message: 'the breaker to open' });
  const posted = r.endpoint.requests.length;
  await waitFor(() => (health.requests.length >= 3 ? true : undefined), { timeoutMs: 5000, message: 'three health probes' });
  assert.equal(r.endpoint.requests.length, posted, 'no job was posted while the health URL said no');
  assert.ok(health.requests.every((q) => q.method === 'GET'));
  down = false;
  healthy = true;
  await waitFor(() => (answeredOk(r.endpoint, posted).size === 10 ? true : undefined), { timeoutMs: 10_000, message: 'all 10 jobs answered after the health check passed' });
  assert.equal(r.pool.status().counters.jobs_failed, 0);
});

test('after the breaker closes the pool ramps up instead of sending every slot at once', async (t) => {
  let inFlight = 0;
  let maxInFlightAfterRecovery = 0;
  let recovered = false;
  const handler: EndpointHandler = async () => {
    if (!recovered) return { status: 503 };
    inFlight++;
    maxInFlightAfterRecovery = Math.max(maxInFlightAfterRecovery, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 50));
    inFlight--;
    return OK;
  };
  const r = await rig(t, { pool: { workerCount: 8, delivery: policy({ minBackoffMs: 20, breakerThreshold: 2, breakerCooloffMs: 300, breakerMaxCooloffMs: 300 }) }, handler });
  for (let i = 0; i < 60; i++) await r.client.submit(r.fn, `job ${i}`, { background: true });
  await waitFor(() => r.pool.status().delivery?.breaker === 'open' || undefined, { timeoutMs: 5000, message: 'the breaker to open' });
  recovered = true;
  const admitted: number[] = [];
  await waitFor(
    () => {
      const delivery = r.pool.status().delivery;
      if (delivery?.breaker === 'closed') admitted.push(delivery.admitted);
      return delivery?.breaker === 'closed' && delivery.admitted === 8 ? true : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 5, message: 'the pool to be fully ramped' },
  );
  assert.ok(admitted[0] !== undefined && admitted[0] < 8, `first admitted count after closing: ${admitted[0]}`);
  await waitFor(async () => ((await queued(r)) === 0 ? true : undefined), { timeoutMs: 15_000, message: 'the queue to drain' });
  assert.ok(maxInFlightAfterRecovery <= 8);
  assert.equal(r.pool.status().counters.jobs_failed, 0);
});

test('a foreground job whose endpoint is down for a while completes once it is back, and its client never sees a failure', async (t) => {
  const r = await rig(t, { pool: { workerCount: 2, delivery: policy({ minBackoffMs: 20, breakerThreshold: 2, breakerCooloffMs: 200, breakerMaxCooloffMs: 200 }) } });
  const port = r.endpoint.port;
  await r.endpoint.close();
  const pending = r.client.submit(r.fn, 'foreground', { timeoutMs: 20_000 });
  await waitFor(() => r.pool.status().delivery?.breaker === 'open' || undefined, { timeoutMs: 5000, message: 'the breaker to open' });
  const back = await startEndpoint(() => ({ body: { gearman_ret: 0, response_string: 'worth the wait' } }), { port });
  t.after(() => back.close());
  const result = await pending;
  assert.equal(result.outcome, 'complete');
  assert.equal(result.result?.toString(), 'worth the wait');
});

test('fail_fast mode keeps the original behaviour: a refused connection is a WORK_FAIL at once, no breaker', async (t) => {
  const r = await rig(t, { pool: { delivery: policy({ mode: 'fail_fast', breakerThreshold: 1 }) } });
  await r.endpoint.close();
  for (let i = 0; i < 3; i++) assert.equal((await r.client.submit(r.fn, 'x')).outcome, 'fail');
  assert.equal(r.pool.status().delivery?.breaker, 'closed');
  assert.equal(r.pool.status().counters.jobs_failed, 3);
});

test('keep_alive (the default) sends every job of a slot on one endpoint connection', async (t) => {
  const r = await rig(t);
  for (let i = 0; i < 5; i++) assert.equal((await r.client.submit(r.fn, `job ${i}`)).outcome, 'complete');
  assert.equal(new Set(r.endpoint.requests.map((q) => q.socketId)).size, 1);
  assert.ok(r.endpoint.requests.every((q) => q.headers.connection === 'keep-alive'));
});

test('keep_alive false opens a new endpoint connection per job', async (t) => {
  const r = await rig(t, { pool: { keepAlive: false } });
  for (let i = 0; i < 5; i++) assert.equal((await r.client.submit(r.fn, `job ${i}`)).outcome, 'complete');
  assert.equal(new Set(r.endpoint.requests.map((q) => q.socketId)).size, 5);
  assert.ok(r.endpoint.requests.every((q) => q.headers.connection === 'close'));
});

test('a permanent failure and an exhausted job are written to the dead-letter file before their WORK_FAIL', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'letters.jsonl');
  const r = await rig(t, {
    pool: { delivery: policy({ maxAttempts: 2, minBackoffMs: 10, breakerThreshold: 0, deadLetterFile: file }) },
    handler: (req) => (req.body.includes('poison') ? { status: 503 } : { status: 500 }),
  });
  const workload = Buffer.from([0x00, 0xff, 0x41, 0x0a]);
  const permanent = await r.client.submit(r.fn, workload, { unique: 'dl-500' });
  assert.equal(permanent.outcome, 'fail');
  // The letter was on disk before the client heard of the failure.
  const first = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(first.length, 1);
  assert.equal(first[0]?.unique, 'dl-500');
  assert.equal(first[0]?.function, r.fn);
  assert.equal(first[0]?.handle, permanent.handle);
  assert.deepEqual(Buffer.from(String(first[0]?.workload), 'base64'), workload);
  assert.equal(first[0]?.attempts, 1);
  assert.match(String(first[0]?.reason), /HTTP 500/);

  assert.equal((await r.client.submit(r.fn, 'poison', { unique: 'dl-503' })).outcome, 'fail');
  const letters = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(letters[1]?.unique, 'dl-503');
  assert.equal(letters[1]?.attempts, 2);
  assert.match(String(letters[1]?.reason), /gave up after 2 attempts/);
  assert.equal(r.pool.status().counters.jobs_dead_lettered, 2);
  assert.equal(r.logger.find('dead-letter file').length, 2, 'every dead letter is logged');
});

test('a dead letter that cannot be written hands the job back to gearmand instead of failing it', async (t) => {
  const dir = tempDir(t);
  let permanent = true;
  const r = await rig(t, {
    pool: { delivery: policy({ deadLetterFile: path.join(dir, 'missing-directory', 'letters.jsonl') }) },
    handler: () => (permanent ? { status: 500 } : OK),
    logLevel: 'error',
  });
  const pending = r.client.submit(r.fn, 'keep me', { timeoutMs: 20_000 });
  await waitFor(() => (r.logger.find('cannot write the dead letter').length > 0 ? true : undefined), { timeoutMs: 5000, message: 'the write failure to be logged' });
  assert.equal(r.pool.status().counters.jobs_failed, 0);
  permanent = false;
  const result = await pending;
  assert.equal(result.outcome, 'complete', 'the job came back from gearmand and ran');
  assert.ok(r.pool.status().counters.jobs_handed_back >= 1);
});
