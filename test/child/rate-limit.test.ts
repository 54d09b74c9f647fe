import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import type { Rig } from './fixtures.js';
import { rig } from './fixtures.js';
import { waitFor } from '../helpers/wait-for.js';

/** Queues `count` background jobs of the rig's function (a full queue: the pool, not the client, sets the pace). */
async function queue(r: Rig, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, i) => r.client.submit(r.fn, `job-${i}`, { background: true })));
}

/** Requests the endpoint received in [from, from + ms) (Date.now() of each request's arrival). */
function receivedBetween(r: Rig, from: number, ms: number): number {
  return r.endpoint.requests.filter((req) => req.receivedAt >= from && req.receivedAt < from + ms).length;
}

async function fds(r: Rig): Promise<string[]> {
  return (await r.gearmand.workers())
    .filter((w) => w.functions.includes(r.fn))
    .map((w) => w.fd)
    .sort();
}

test('a rate_limit of 50/s should hold within 5 % over 10 s with 20 slots and a full queue', async (t) => {
  const r = await rig(t, { pool: { workerCount: 20, rateLimit: { perSecond: 50, burst: 10 } } });
  await queue(r, 800);
  const first = await waitFor(() => r.endpoint.requests[0]?.receivedAt, { timeoutMs: 10_000, message: 'the first job' });
  // Measured over one 10 s window starting after the first second (the burst and the queueing are over):
  // a late timer on a loaded machine delays a token, it does not lose one, so the window's count holds.
  const from = first + 1000;
  await delay(from + 10_500 - Date.now());
  const count = receivedBetween(r, from, 10_000);
  assert.ok(count >= 475 && count <= 525, `${count} jobs in 10 s; expected 500 ± 5 %`);
  const queued = (await r.gearmand.status()).find((s) => s.function === r.fn);
  assert.ok(queued !== undefined && queued.total - queued.running > 100, `the rest wait in gearmand: ${JSON.stringify(queued)}`);
  const flow = r.pool.status().flow;
  assert.equal(flow?.ratePerSecond, 50);
  assert.equal(flow?.burst, 10);
  assert.ok((flow?.waitingSlots ?? 0) > 0, 'idle slots wait for a token instead of grabbing');
});

test('a reload should change the rate without reconnecting to gearmand', async (t) => {
  const r = await rig(t, { pool: { workerCount: 5, rateLimit: { perSecond: 100, burst: 10 } } });
  await queue(r, 1200);
  const first = await waitFor(() => r.endpoint.requests[0]?.receivedAt, { timeoutMs: 10_000, message: 'the first job' });
  await delay(first + 2500 - Date.now());
  const before = receivedBetween(r, first + 500, 2000);
  assert.ok(before >= 180 && before <= 220, `${before} jobs in 2 s at 100/s`);
  const connections = await fds(r);
  const slots = r.pool.status().slots.map((s) => s.id);
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, rateLimit: { perSecond: 20, burst: 10 } } });
  const reloaded = Date.now();
  assert.equal(r.pool.status().flow?.ratePerSecond, 20);
  await delay(reloaded + 4700 - Date.now());
  // After the tokens left in the bucket (at most the burst, within the first 0.5 s).
  const after = receivedBetween(r, reloaded + 500, 4000);
  assert.ok(after >= 72 && after <= 88, `${after} jobs in 4 s at 20/s`);
  assert.deepEqual(await fds(r), connections, 'the same gearmand connections');
  assert.deepEqual(r.pool.status().slots.map((s) => s.id), slots, 'the same slots');
});

test('an idle pool should keep its burst: grabs that find no job give their token back', async (t) => {
  // One token every 5 s, and a liveness probe (a GRAB on the sleeping connection) every 400 ms.
  const r = await rig(t, { pool: { workerCount: 4, rateLimit: { perSecond: 0.2, burst: 5 } }, settings: { loopTimeoutMs: 400 } });
  // The scenario itself: a pool left idle long enough for several probes on every server.
  await delay(2500);
  // Every token still there after the startup grabs and the probes found nothing (a probe's GRAB
  // holds one for the moment it is outstanding).
  await waitFor(() => r.pool.status().flow?.tokens === 5 || undefined, { timeoutMs: 2000, intervalMs: 5, message: 'a full bucket after 2.5 s idle' });
  const submitted = Date.now();
  await queue(r, 6);
  await waitFor(() => r.endpoint.requests.length >= 5 || undefined, { timeoutMs: 3000, message: 'the burst: five jobs at once' });
  const burstMs = Math.max(...r.endpoint.requests.map((req) => req.receivedAt)) - submitted;
  assert.ok(burstMs < 1500, `five jobs within ${burstMs} ms of being queued`);
  await delay(1500);
  assert.equal(r.endpoint.requests.length, 5, 'the sixth waits for the next token');
});
