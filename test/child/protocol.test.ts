/**
 * The rest of the worker protocol end to end: a real gearmand, a real endpoint streaming
 * application/x-ndjson, a WorkerPool in this process, and php-gearman as the client (the callbacks
 * and jobStatus() PHP applications use), plus the codec client where PHP cannot show a detail.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_DELIVERY } from '../../src/config/types.js';
import { tempDir } from '../helpers/temp-dir.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { php } from '../helpers/php-client.js';
import { waitFor } from '../helpers/wait-for.js';
import { rig } from './fixtures.js';

/** Retries without noticeable backoff. */
const FAST_RETRY = { ...DEFAULT_DELIVERY, minBackoffMs: 1, maxBackoffMs: 5 };

test('an ndjson answer should reach a PHP client as status, data and warning callbacks, then complete', async (t) => {
  const r = await rig(t, {
    handler: () => ({
      stream: [
        { data: { status: [1, 4] } },
        { data: { data: 'part one' }, delayMs: 20 },
        { data: { warning: 'slow disk' }, delayMs: 20 },
        { data: { status: [4, 4], data: 'part two' }, delayMs: 20 },
        { data: { gearman_ret: 0, response_string: 'done' }, delayMs: 20 },
      ],
    }),
  });
  const events = await php(['run', String(r.gearmand.port), r.fn, 'w']);
  assert.deepEqual(events, [
    ['status', 1, 4],
    ['data', 'part one'],
    ['warning', 'slow disk'],
    ['status', 4, 4],
    ['data', 'part two'],
    ['complete', 'done'],
  ]);
});

test('a streamed status should be visible to jobStatus() of a background job while the endpoint still works', async (t) => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  t.after(() => release());
  const r = await rig(t, {
    handler: () => ({ stream: [{ data: { status: [3, 7] } }, { data: { gearman_ret: 0, response_string: 'x' }, after: gate }] }),
  });
  const port = String(r.gearmand.port);
  const [created] = await php(['background', port, r.fn, 'w']);
  assert.equal(created?.[0], 'handle');
  const handle = created?.[1] as string;
  // The endpoint holds its last line until `gate`: the status can only come from the first line.
  const status = await waitFor(
    async () => {
      const [line] = await php(['status', port, handle]);
      return line?.[3] === 3 ? line : undefined;
    },
    { timeoutMs: 10_000, message: `jobStatus(${handle}) to report 3/7` },
  );
  assert.deepEqual(status, ['status', true, true, 3, 7]);
  release();
  await waitFor(async () => ((await php(['status', port, handle]))[0]?.[1] === false ? true : undefined), {
    timeoutMs: 10_000,
    message: `jobStatus(${handle}) to report the job gone once it completed`,
  });
});

test('gearman_ret with an exception should send WORK_EXCEPTION alone, after the dead letter', async (t) => {
  const deadLetterFile = path.join(tempDir(t), 'dead.jsonl');
  const r = await rig(t, {
    pool: { delivery: { ...DEFAULT_DELIVERY, deadLetterFile } },
    handler: () => ({ body: { gearman_ret: 1, exception: 'boom: order 42 is invalid' } }),
  });
  // PHP: the exception callback, and neither fail nor complete.
  assert.deepEqual(await php(['run', String(r.gearmand.port), r.fn, 'w']), [['exception', 'boom: order 42 is invalid']]);

  // A client with the exceptions option gets the bytes; an ndjson final line works the same way.
  const client = await GearmanClient.connect(r.gearmand.port, '127.0.0.1', { exceptions: true });
  t.after(() => client.close());
  const result = await client.submit(r.fn, 'w', { timeoutMs: 10_000 });
  assert.equal(result.outcome, 'exception');
  assert.equal(result.result?.toString(), 'boom: order 42 is invalid');
  r.endpoint.setHandler(() => ({ stream: [{ data: { status: [1, 2] } }, { data: { gearman_ret: 1, exception: { code: 7 } } }] }));
  const streamed = await client.submit(r.fn, 'w', { timeoutMs: 10_000 });
  assert.equal(streamed.outcome, 'exception');
  assert.equal(streamed.result?.toString(), '{"code":7}', 'a non-string exception is sent as its JSON text');

  const letters = readFileSync(deadLetterFile, 'utf8').trim().split('\n');
  assert.equal(letters.length, 3);
  const failed = await waitFor(() => (r.logger.find('job failed').length === 3 ? r.logger.find('job failed') : undefined), { timeoutMs: 5000, message: 'three "job failed" warnings' });
  assert.match(String(failed[0]?.reason), /gearman_ret 1 with exception "boom: order 42 is invalid"/);
  // A WORK_FAIL after the WORK_EXCEPTION would have earned an ERROR "job not found" from gearmand.
  assert.deepEqual(r.logger.find('gearmand sent an ERROR packet'), []);
  assert.equal(r.pool.status().counters.jobs_failed, 3);
});

test('an exception on a retry_after answer should be sent when the slot gives up on the job', async (t) => {
  const r = await rig(t, {
    pool: { delivery: { ...FAST_RETRY, maxAttempts: 2 } },
    handler: () => ({ body: { gearman_ret: 1, retry_after: 0, exception: 'still down' } }),
  });
  const client = await GearmanClient.connect(r.gearmand.port, '127.0.0.1', { exceptions: true });
  t.after(() => client.close());
  const result = await client.submit(r.fn, 'w', { timeoutMs: 10_000 });
  assert.equal(result.outcome, 'exception');
  assert.equal(result.result?.toString(), 'still down');
  assert.equal(r.endpoint.requests.length, 2);
});

test('a retried attempt may send its progress again: what gearmand got cannot be taken back', async (t) => {
  let calls = 0;
  const r = await rig(t, {
    pool: { delivery: FAST_RETRY },
    handler: () =>
      ++calls === 1
        ? { stream: [{ data: { data: 'partial' } }, { reset: true, delayMs: 20 }] }
        : { stream: [{ data: { data: 'partial' } }, { data: { gearman_ret: 0, response_string: 'ok' } }] },
  });
  const result = await r.client.submit(r.fn, 'w', { timeoutMs: 10_000 });
  assert.equal(result.outcome, 'complete');
  assert.equal(result.result?.toString(), 'ok');
  assert.deepEqual(
    result.data.map(String),
    ['partial', 'partial'],
  );
  assert.equal(calls, 2);
});

test('a malformed ndjson stream should fail the job with the line named; a plain JSON answer still completes', async (t) => {
  const r = await rig(t, { handler: () => ({ stream: [{ data: { status: [1, 2] } }, { data: '{"status": "half"}\n' }, { data: { gearman_ret: 0, response_string: 'never' }, delayMs: 50 }] }) });
  assert.deepEqual(await php(['run', String(r.gearmand.port), r.fn, 'w']), [['status', 1, 2], ['fail']]);
  const failed = await waitFor(() => r.logger.find('job failed')[0], { timeoutMs: 5000, message: 'a "job failed" warning' });
  assert.match(String(failed.reason), /line 2 of the application\/x-ndjson answer: status must be \[numerator, denominator\]/);

  r.endpoint.setHandler(() => ({ stream: [{ data: { status: [1, 2] } }] }));
  assert.deepEqual(await php(['run', String(r.gearmand.port), r.fn, 'w']), [['status', 1, 2], ['fail']]);

  r.endpoint.setHandler(() => ({ body: { gearman_ret: 0, response_string: 'plain' } }));
  assert.deepEqual(await php(['run', String(r.gearmand.port), r.fn, 'w']), [['complete', 'plain']]);
});
