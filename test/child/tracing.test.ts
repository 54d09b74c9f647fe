/**
 * Tracing and job identity headers end to end: a real gearmand, a real endpoint that records every
 * request, a WorkerPool in this process, and the codec client.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_DELIVERY } from '../../src/config/types.js';
import { waitFor } from '../helpers/wait-for.js';
import { rig } from './fixtures.js';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;
/** Retries without noticeable backoff. */
const FAST_RETRY = { ...DEFAULT_DELIVERY, minBackoffMs: 1, maxBackoffMs: 5 };

function header(value: string | string[] | undefined): string {
  assert.equal(typeof value, 'string', `header value ${JSON.stringify(value)}`);
  return value as string;
}

test('every POST should carry traceparent and the job identity headers; logs should carry the trace id', async (t) => {
  const r = await rig(t, { logLevel: 'debug' });
  const { client, endpoint, fn } = r;

  const result = await client.submit(fn, 'w', { unique: 'order-42' });
  assert.equal(result.outcome, 'complete');
  const request = endpoint.requests.at(-1);
  assert.ok(request !== undefined);
  const traceparent = header(request.headers.traceparent);
  const match = TRACEPARENT.exec(traceparent);
  assert.ok(match !== null, traceparent);
  assert.equal(header(request.headers['driveshaft-function']), fn);
  assert.equal(header(request.headers['driveshaft-job-handle']), result.handle);
  assert.equal(header(request.headers['driveshaft-unique']), 'order-42');
  assert.equal(header(request.headers['driveshaft-attempt']), '1');

  const done = await waitFor(() => r.logger.find('job done').find((rec) => rec.handle === result.handle), { timeoutMs: 5000, message: 'the "job done" debug record' });
  assert.equal(done.trace_id, match[1]);

  // A second job is a second trace.
  await client.submit(fn, 'w');
  const second = TRACEPARENT.exec(header(endpoint.requests.at(-1)?.headers.traceparent));
  assert.ok(second !== null);
  assert.notEqual(second[1], match[1]);
});

test('a unique with spaces, percent signs and non-ASCII should arrive percent-encoded, exactly decodable', async (t) => {
  const { client, endpoint, fn } = await rig(t);
  const unique = 'café 100% «ok»';
  const result = await client.submit(fn, 'w', { unique });
  assert.equal(result.outcome, 'complete');
  const value = header(endpoint.requests.at(-1)?.headers['driveshaft-unique']);
  assert.equal(value, 'caf%C3%A9%20100%25%20%C2%ABok%C2%BB');
  assert.equal(decodeURIComponent(value), unique);
  // No unique: an empty value.
  await client.submit(fn, 'w', { unique: '' });
  assert.equal(endpoint.requests.at(-1)?.headers['driveshaft-unique'], '');
});

test('retries of one job should keep its trace id and get a new span id per attempt', async (t) => {
  let calls = 0;
  const r = await rig(t, {
    pool: { delivery: FAST_RETRY },
    logLevel: 'debug',
    handler: () => (++calls < 3 ? { status: 503, body: '' } : { body: { gearman_ret: 0, response_string: 'third' } }),
  });
  const result = await r.client.submit(r.fn, 'w');
  assert.equal(result.outcome, 'complete');
  const attempts = r.endpoint.requests.map((req) => TRACEPARENT.exec(header(req.headers.traceparent)));
  assert.equal(attempts.length, 3);
  const traceIds = new Set(attempts.map((m) => m?.[1]));
  const spanIds = new Set(attempts.map((m) => m?.[2]));
  assert.equal(traceIds.size, 1, 'one trace id across the attempts');
  assert.equal(spanIds.size, 3, 'a span id per attempt');
  assert.deepEqual(
    r.endpoint.requests.map((req) => req.headers['driveshaft-attempt']),
    ['1', '2', '3'],
  );
  const retryLogs = r.logger.find('attempt failed; retrying');
  assert.equal(retryLogs.length, 2);
  for (const rec of retryLogs) assert.equal(rec.trace_id, [...traceIds][0]);
});

test('a failed job\'s warning should carry the trace id of its requests', async (t) => {
  const r = await rig(t, { handler: () => ({ body: { gearman_ret: 3 } }) });
  const result = await r.client.submit(r.fn, 'w');
  assert.equal(result.outcome, 'fail');
  const failed = await waitFor(() => r.logger.find('job failed').find((rec) => rec.handle === result.handle), { timeoutMs: 5000, message: 'a "job failed" warning' });
  const match = TRACEPARENT.exec(header(r.endpoint.requests.at(-1)?.headers.traceparent));
  assert.equal(failed.trace_id, match?.[1]);
});

test('trace_parent_field should make a job join the workload\'s trace with a new span, and ignore bad values', async (t) => {
  const r = await rig(t, { pool: { traceParentField: 'tp' } });
  const upstream = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
  await r.client.submit(r.fn, JSON.stringify({ order: 1, tp: upstream }));
  const joined = TRACEPARENT.exec(header(r.endpoint.requests.at(-1)?.headers.traceparent).replace(/-00$/, '-01'));
  assert.ok(joined !== null);
  assert.equal(joined[1], '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.notEqual(joined[2], '00f067aa0ba902b7', 'a span of its own, child of the upstream one');
  assert.match(header(r.endpoint.requests.at(-1)?.headers.traceparent), /-00$/, 'the upstream flags are kept');

  for (const workload of [JSON.stringify({ tp: 'nonsense' }), JSON.stringify({ other: upstream }), 'not json', JSON.stringify([upstream])]) {
    await r.client.submit(r.fn, workload);
    const own = TRACEPARENT.exec(header(r.endpoint.requests.at(-1)?.headers.traceparent));
    assert.ok(own !== null, workload);
    assert.notEqual(own[1], '4bf92f3577b34da6a3ce929d0e0e4736', workload);
  }
});

test('without trace_parent_field a workload\'s traceparent member should be ignored', async (t) => {
  const r = await rig(t);
  await r.client.submit(r.fn, JSON.stringify({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }));
  const own = TRACEPARENT.exec(header(r.endpoint.requests.at(-1)?.headers.traceparent));
  assert.ok(own !== null);
  assert.notEqual(own[1], '4bf92f3577b34da6a3ce929d0e0e4736');
});
