/**
 * The status page's flow-control line, rendered by headless Chromium from the real Exporter fed with a
 * snapshot (no daemon: the page is a function of /status).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FlowStatus, GateFlowStatus } from '../../src/ipc/messages.js';
import type { ChildObservation } from '../../src/observe/observation.js';
import { NEEDS_CHROMIUM, openStatusPage } from '../helpers/status-page-browser.js';
import { observationOf, pool, runningChild } from '../master/support.js';

function child(name: string, pid: number, limits: GateFlowStatus): ChildObservation {
  const flow: FlowStatus = { paused: false, pausedFunctions: [], ...limits };
  return runningChild(name, pid, { flow });
}

test('the status page should show a pool\'s concurrency limit and rate limit, and nothing for a pool without them', NEEDS_CHROMIUM, async (t) => {
  const now = Date.now();
  const observation = observationOf({
    takenAt: now,
    startedAt: now - 60_000,
    configLoadedAt: now - 60_000,
    pools: { Shaped: pool('Shaped', { workerCount: 200 }), Plain: pool('Plain', { workerCount: 4 }) },
    poolNames: ['Shaped', 'Plain'],
    children: [
      child('Shaped', 11, { concurrency: 'adaptive', concurrencyLimit: 19, baselineMs: 101.3, ratePerSecond: 50, burst: 5, tokens: 2, waitingSlots: 181 }),
      child('Plain', 12, { concurrency: 'fixed', concurrencyLimit: 4, baselineMs: null, ratePerSecond: null, burst: null, tokens: null, waitingSlots: 0 }),
    ],
  });
  const { page, problems } = await openStatusPage(t, observation);
  const shaped = page.locator('section[data-pool="Shaped"] .limits');
  await shaped.waitFor({ timeout: 10_000 });
  assert.equal(await shaped.innerText(), 'adaptive concurrency: 19 / 200 slots (baseline 101.3 ms) · rate 50/s, burst 5, 2 tokens · 181 waiting');
  await page.locator('section[data-pool="Plain"]').waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('section[data-pool="Plain"] .limits').count(), 0, 'a pool without flow control shows no line');
  assert.deepEqual(problems, []);
});
