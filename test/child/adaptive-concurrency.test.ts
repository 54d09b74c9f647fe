import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rig } from './fixtures.js';
import type { Rig } from './fixtures.js';
import type { EndpointHandler } from '../helpers/http-endpoint.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * An endpoint whose latency depends on how many requests it is serving: BASE_MS up to `knee` at once,
 * PER_EXTRA_MS more for each one past it (a service that thrashes when overloaded).
 */
const BASE_MS = 60;
const PER_EXTRA_MS = 50;

function kneeEndpoint(): { handler: EndpointHandler; setKnee(knee: number): void; readonly peak: number; resetPeak(): void } {
  let knee = 10;
  let inFlight = 0;
  let peak = 0;
  return {
    handler: () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      const delayMs = BASE_MS + PER_EXTRA_MS * Math.max(0, inFlight - knee);
      // The answer leaves after delayMs: the request stops counting then.
      setTimeout(() => inFlight--, delayMs);
      return { delayMs, body: { gearman_ret: 0, response_string: 'ok' } };
    },
    setKnee(value) {
      knee = value;
    },
    get peak() {
      return peak;
    },
    resetPeak() {
      peak = 0;
    },
  };
}

/** The pool's adaptive limit, polled; the lowest seen so far kept. */
function limitWatch(r: Rig): { readonly current: number; readonly lowest: number; stop(): void } {
  let lowest = Infinity;
  const read = (): number => r.pool.status().flow?.concurrencyLimit ?? NaN;
  const timer = setInterval(() => {
    lowest = Math.min(lowest, read());
  }, 20);
  return {
    get current() {
      const now = read();
      lowest = Math.min(lowest, now);
      return now;
    },
    get lowest() {
      return lowest;
    },
    stop: () => clearInterval(timer),
  };
}

test('adaptive concurrency should fall when latency rises past the knee and rise again when it recovers, never below the floor', async (t) => {
  const endpoint = kneeEndpoint();
  const r = await rig(t, { pool: { workerCount: 30, concurrency: { mode: 'adaptive', min: 2 } }, handler: endpoint.handler });
  // A queue that stays full for the whole test (about 150 jobs a second at the knee).
  await Promise.all(Array.from({ length: 12_000 }, (_, i) => r.client.submit(r.fn, `job-${i}`, { background: true })));
  const watch = limitWatch(r);
  t.after(() => watch.stop());

  // Knee at 10: the limit climbs from the floor to about 10 (30 slots, 20 of them never grab).
  await waitFor(() => watch.current >= 8 || undefined, { timeoutMs: 40_000, intervalMs: 100, message: 'the limit to reach the knee (10)' });
  assert.equal(r.pool.status().flow?.concurrency, 'adaptive');
  assert.ok((r.pool.status().flow?.baselineMs ?? 0) >= BASE_MS, 'a baseline at the endpoint\'s no-load latency');
  endpoint.resetPeak();
  await waitFor(() => endpoint.peak >= 8 || undefined, { timeoutMs: 5000, message: 'the endpoint to serve about 10 at once' });
  assert.ok(endpoint.peak <= 16, `the endpoint served ${endpoint.peak} at once, not the 30 slots`);

  // The endpoint degrades: past 3 at once every request costs 50 ms more.
  endpoint.setKnee(3);
  await waitFor(() => watch.current <= 5 || undefined, { timeoutMs: 30_000, intervalMs: 100, message: 'the limit to fall to the new knee (3)' });

  // It recovers.
  endpoint.setKnee(10);
  await waitFor(() => watch.current >= 8 || undefined, { timeoutMs: 40_000, intervalMs: 100, message: 'the limit to rise again to the knee (10)' });
  assert.ok(watch.lowest >= 2, `never below concurrency.min: lowest ${watch.lowest}`);
});

test('a reload should switch a pool between fixed and adaptive concurrency in place', async (t) => {
  const endpoint = kneeEndpoint();
  const r = await rig(t, { pool: { workerCount: 12 }, handler: endpoint.handler });
  assert.deepEqual(r.pool.status().flow, { concurrency: 'fixed', concurrencyLimit: 12, baselineMs: null, ratePerSecond: null, burst: null, tokens: null, waitingSlots: 0, paused: false, pausedFunctions: [] });
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, concurrency: { mode: 'adaptive', min: 4 } } });
  assert.equal(r.pool.status().flow?.concurrency, 'adaptive');
  assert.equal(r.pool.status().flow?.concurrencyLimit, 4, 'an adaptive pool starts at its floor');
  await Promise.all(Array.from({ length: 50 }, (_, i) => r.client.submit(r.fn, `job-${i}`, { background: true })));
  await waitFor(() => endpoint.peak >= 4 || undefined, { timeoutMs: 5000, message: 'four jobs at once' });
  assert.equal(endpoint.peak, 4, 'no more than the floor before the first window');
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, workerCount: 12 } });
  assert.equal(r.pool.status().flow?.concurrencyLimit, 12, 'fixed again: every slot');
});
