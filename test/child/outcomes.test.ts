/**
 * The HTTP contract's outcome table (docs/http-contract.md), row by row, end to end: a real gearmand,
 * a real HTTP endpoint, a WorkerPool in this process, and a Gearman client that sees what users'
 * clients see.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { freePort } from '../helpers/free-port.js';
import { parseJsonJob } from '../helpers/http-endpoint.js';
import { waitFor } from '../helpers/wait-for.js';
import { DEFAULT_DELIVERY, DeliveryMode } from '../../src/config/types.js';
import { rig } from './fixtures.js';

/** The original's behaviour, where every failure is a WORK_FAIL at once: the timing tests below need it. */
const FAIL_FAST = { ...DEFAULT_DELIVERY, mode: DeliveryMode.FAIL_FAST };

test('WorkerPool outcomes should follow the outcome table of the HTTP contract', async (t) => {
  const r = await rig(t, { pool: { maxResponseBytes: 4096 } });
  const { client, endpoint, fn, pool } = r;
  const fail = async (reason: RegExp): Promise<void> => {
    const result = await client.submit(fn, 'w');
    assert.equal(result.outcome, 'fail');
    await waitFor(() => r.logger.find('job failed').some((rec) => reason.test(String(rec.reason))) || undefined, {
      timeoutMs: 5000,
      message: `a "job failed" warning matching ${reason}`,
    });
  };

  await t.test('200 + gearman_ret 0 + response_string should send WORK_COMPLETE with that string', async () => {
    endpoint.setHandler(() => ({ body: { gearman_ret: 0, response_string: '3', extra: [1, 2] } }));
    const result = await client.submit(fn, '[1,2]');
    assert.equal(result.outcome, 'complete');
    assert.equal(result.result?.toString(), '3');
  });

  await t.test('response_string with \\u0000 and non-ASCII should reach the client byte for byte', async () => {
    endpoint.setHandler(() => ({ body: '{"gearman_ret":0,"response_string":"a\\u0000b\\u0000\\u00e9\\u2603"}', headers: { 'content-type': 'text/html' } }));
    const result = await client.submit(fn, 'x');
    assert.equal(result.outcome, 'complete');
    assert.deepEqual(result.result, Buffer.from('a\u0000b\u0000é☃', 'utf8'));
  });

  await t.test('an empty response_string should complete with an empty result', async () => {
    endpoint.setHandler(() => ({ body: { gearman_ret: 0, response_string: '' } }));
    const result = await client.submit(fn, 'x');
    assert.equal(result.outcome, 'complete');
    assert.equal(result.result?.length, 0);
  });

  await t.test('any other integer gearman_ret should send WORK_FAIL', async () => {
    endpoint.setHandler(() => ({ body: { gearman_ret: 1, response_string: 'nope' } }));
    await fail(/gearman_ret 1\b/);
    endpoint.setHandler(() => ({ body: { gearman_ret: -3 } }));
    await fail(/gearman_ret -3/);
  });

  await t.test('non-200 statuses should send WORK_FAIL, and a 302 is not followed', async () => {
    endpoint.setHandler(() => ({ status: 500, body: { gearman_ret: 0, response_string: 'ignored' } }));
    await fail(/HTTP 500/);
    const before = endpoint.requests.length;
    endpoint.setHandler((req) => (req.url === '/job' ? { status: 302, headers: { location: '/other' }, body: '' } : { body: { gearman_ret: 0, response_string: 'followed' } }));
    await fail(/HTTP 302/);
    assert.equal(endpoint.requests.length, before + 1, 'the redirect must not be followed');
    endpoint.setHandler(() => ({ status: 204 }));
    await fail(/HTTP 204/);
  });

  await t.test('a body that is not JSON should send WORK_FAIL', async () => {
    endpoint.setHandler(() => ({ body: '<html>Fatal error</html>' }));
    await fail(/not JSON/);
    endpoint.setHandler(() => ({ body: '' }));
    await fail(/not JSON/);
  });

  await t.test('a JSON array root (crashed the original) should send WORK_FAIL', async () => {
    endpoint.setHandler(() => ({ body: '[{"gearman_ret":0,"response_string":"3"}]', headers: { 'content-type': 'application/json' } }));
    await fail(/root is an array/);
    endpoint.setHandler(() => ({ body: 'null', headers: { 'content-type': 'application/json' } }));
    await fail(/root is null/);
    endpoint.setHandler(() => ({ body: '"str"', headers: { 'content-type': 'application/json' } }));
    await fail(/root is string/);
  });

  await t.test('gearman_ret missing, not an integer or >= 2^31 should send WORK_FAIL', async () => {
    endpoint.setHandler(() => ({ body: { response_string: '3' } }));
    await fail(/no gearman_ret/);
    endpoint.setHandler(() => ({ body: { gearman_ret: '0', response_string: '3' } }));
    await fail(/not an integer/);
    endpoint.setHandler(() => ({ body: { gearman_ret: 0.5, response_string: '3' } }));
    await fail(/not an integer/);
    endpoint.setHandler(() => ({ body: { gearman_ret: null, response_string: '3' } }));
    await fail(/not an integer/);
    endpoint.setHandler(() => ({ body: '{"gearman_ret":2147483648,"response_string":"3"}', headers: { 'content-type': 'application/json' } }));
    await fail(/outside the 32-bit/);
    endpoint.setHandler(() => ({ body: '{"gearman_ret":1e400,"response_string":"3"}', headers: { 'content-type': 'application/json' } }));
    await fail(/not an integer|outside/);
  });

  await t.test('response_string missing or not a string should send WORK_FAIL', async () => {
    endpoint.setHandler(() => ({ body: { gearman_ret: 0 } }));
    await fail(/response_string is missing/);
    endpoint.setHandler(() => ({ body: { gearman_ret: 0, response_string: 3 } }));
    await fail(/response_string is not a string/);
    endpoint.setHandler(() => ({ body: { gearman_ret: 0, response_string: null } }));
    await fail(/response_string is not a string/);
  });

  await t.test('a body over the size limit should send WORK_FAIL', async () => {
    endpoint.setHandler(() => ({ body: { gearman_ret: 0, response_string: 'x'.repeat(8192) } }));
    await fail(/response body is over max_response_bytes \(4096\)/);
  });

  await t.test('a connection reset by the endpoint is transient: the job is posted again and completes', async () => {
    let resets = 0;
    endpoint.setHandler(() => (resets++ === 0 ? { destroy: true } : { body: { gearman_ret: 0, response_string: 'second try' } }));
    const before = endpoint.requests.length;
    const result = await client.submit(fn, 'reset once');
    assert.equal(result.outcome, 'complete');
    assert.equal(result.result?.toString(), 'second try');
    assert.equal(endpoint.requests.length - before, 2);
  });

  await t.test('the pool should still serve after all of that', async () => {
    endpoint.setHandler(() => ({ body: { gearman_ret: 0, response_string: 'alive' } }));
    const result = await client.submit(fn, 'x');
    assert.equal(result.outcome, 'complete');
    assert.equal(result.result?.toString(), 'alive');
    const status = pool.status();
    assert.equal(status.slots.length, 1);
    assert.ok(status.counters.jobs_completed >= 4);
    assert.ok(status.counters.http_errors >= 15, `http_errors ${status.counters.http_errors}`);
    assert.equal(status.counters.jobs_timed_out, 0);
  });
});

test('WorkerPool should drop the connection on gearman_ret 14 and WORK_FAIL the 6th time', async (t) => {
  const r = await rig(t, { handler: () => ({ body: { gearman_ret: 14, response_string: '' } }) });
  const result = await r.client.submit(r.fn, 'requeue me', { unique: 'rq-1' });
  assert.equal(result.outcome, 'fail');
  const handles = r.endpoint.requests.map((req) => parseJsonJob(req.body).job_handle);
  assert.equal(handles.length, 6, 'five re-queues, then the sixth answer is failed');
  assert.ok(handles.every((h) => h === result.handle), 'every run is the same job handle');
  const counters = r.pool.status().counters;
  assert.equal(counters.jobs_requeued, 5);
  assert.equal(counters.jobs_failed, 1);
  assert.equal(counters.http_errors, 0);
  // Each re-queue dropped and re-opened the gearmand connection; the slot is registered again.
  await waitFor(async () => (await r.gearmand.workers()).some((w) => w.functions.includes(r.fn)) || undefined, { timeoutMs: 5000, message: 'the slot to be registered again' });
  r.endpoint.setHandler(() => ({ body: { gearman_ret: 0, response_string: 'fine' } }));
  assert.equal((await r.client.submit(r.fn, 'next')).result?.toString(), 'fine');
});

test('WorkerPool in fail_fast mode should WORK_FAIL a job once max_running_time passes (within 10%)', async (t) => {
  const r = await rig(t, { pool: { maxRunningTimeMs: 1000, delivery: FAIL_FAST }, handler: () => ({ delayMs: 5000, body: { gearman_ret: 0, response_string: 'late' } }) });
  for (let i = 0; i < 2; i++) {
    const submittedWall = Date.now();
    const result = await r.client.submit(r.fn, `slow ${i}`);
    const settledWall = Date.now();
    assert.equal(result.outcome, 'fail');
    const request = r.endpoint.requests[i];
    assert.ok(request !== undefined);
    // The limit counts from assignment; the request reaches the endpoint right after it.
    const fromRequest = settledWall - request.receivedAt;
    const fromSubmit = result.settledAt - result.submittedAt;
    assert.ok(fromSubmit >= 1000 - 5, `failed after ${fromSubmit} ms, before the 1 s limit`);
    assert.ok(fromSubmit <= 1100, `failed after ${fromSubmit} ms (limit 1000 ms + 10%)`);
    assert.ok(fromRequest <= 1100, `failed ${fromRequest} ms after the endpoint got the request`);
    assert.ok(request.receivedAt - submittedWall < 100);
  }
  const counters = r.pool.status().counters;
  assert.equal(counters.jobs_timed_out, 2);
  assert.equal(counters.jobs_failed, 2);
  assert.ok(r.logger.find('job failed').some((rec) => rec.cause === 'timeout' && /max_running_time/.test(String(rec.reason))));
});

test('WorkerPool should time a slow job from its own assignment, not from an earlier job of the slot', async (t) => {
  // The slot's deadline timer is re-armed lazily: the one armed for the fast job fires 1 s after it,
  // which is 0.4 s into the slow job, and must re-arm instead of failing the slow job early.
  const r = await rig(t, { pool: { maxRunningTimeMs: 1000, delivery: FAIL_FAST }, handler: (req) => (req.body.includes('slow') ? { delayMs: 5000, body: { gearman_ret: 0, response_string: 'late' } } : { body: { gearman_ret: 0, response_string: 'fast' } }) });
  assert.equal((await r.client.submit(r.fn, 'quick')).outcome, 'complete');
  await new Promise((resolve) => setTimeout(resolve, 600)); // the gap between the two jobs is the scenario
  const result = await r.client.submit(r.fn, 'slow');
  assert.equal(result.outcome, 'fail');
  const took = result.settledAt - result.submittedAt;
  assert.ok(took >= 1000 - 5, `the slow job failed after ${took} ms, before its own 1 s limit`);
  assert.ok(took <= 1100, `the slow job failed after ${took} ms (limit 1000 ms + 10%)`);
  assert.equal(r.pool.status().counters.jobs_timed_out, 1);
});

test('WorkerPool in fail_fast mode should WORK_FAIL when the endpoint refuses connections, fails DNS or TLS', async (t) => {
  const port = await freePort();
  const r = await rig(t, { pool: { jobProcessingUri: `http://127.0.0.1:${port}/job`, maxRunningTimeMs: 5000, delivery: FAIL_FAST } });
  const refused = await r.client.submit(r.fn, 'x');
  assert.equal(refused.outcome, 'fail');
  assert.ok(r.logger.find('job failed').some((rec) => /ECONNREFUSED/.test(String(rec.reason))));

  // TLS to a plain TCP server that answers garbage.
  const sockets = new Set<Socket>();
  const plain = createServer((socket) => {
    sockets.add(socket);
    socket.end('HTTP/1.1 200 OK\r\n\r\nnot tls');
  });
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    // undici may leave the failed TLS socket half-open (and unref'd): close() alone would wait on it.
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => plain.close(() => resolve()));
  });
  const tlsPort = (plain.address() as { port: number }).port;
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, jobProcessingUri: `https://127.0.0.1:${tlsPort}/job` } });
  const tls = await r.client.submit(r.fn, 'x');
  assert.equal(tls.outcome, 'fail');

  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, jobProcessingUri: 'http://no-such-host.invalid/job' } });
  const dns = await r.client.submit(r.fn, 'x');
  assert.equal(dns.outcome, 'fail');
  assert.equal(r.pool.status().counters.http_errors, 3);
});
