/**
 * The status page's account of an operator's pause, rendered by headless Chromium from the real
 * Exporter fed with a snapshot (no daemon: the page is a function of /status).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { zeroCounters } from '../../src/ipc/counters.js';
import { emptyMetrics } from '../../src/ipc/metrics.js';
import type { ChildObservation, Observation } from '../../src/observe/observation.js';
import { NEEDS_CHROMIUM, openStatusPage } from '../helpers/status-page-browser.js';
import { observationOf, pool, runningChild } from '../master/support.js';

function child(name: string, pid: number): ChildObservation {
  return runningChild(name, pid);
}

function observation(): Observation {
  const now = Date.now();
  const totals = { counters: zeroCounters(), metrics: emptyMetrics(), restarts: 0, breakerOpened: 0, functionBreakerOpened: new Map<string, number>() };
  return observationOf({
    takenAt: now,
    startedAt: now - 60_000,
    pools: { Held: pool('Held'), Split: pool('Split', { jobsList: ['Resize', 'Sum'] }), Flowing: pool('Flowing') },
    poolNames: ['Held', 'Split', 'Flowing'],
    children: [child('Held', 11), child('Split', 12), child('Flowing', 13)],
    totals: new Map([['Held', totals], ['Split', totals], ['Flowing', totals]]),
    pauses: new Map([
      ['Held', { pool: { since: now - 5000, by: '127.0.0.1:5555' }, functions: [] }],
      ['Split', { pool: null, functions: [{ function: 'Resize', since: now - 5000, by: '[::1]:6666' }] }],
    ]),
  });
}

test('the status page should badge a paused pool and a pool with paused functions, and say since when and by whom', NEEDS_CHROMIUM, async (t) => {
  const { page, problems } = await openStatusPage(t, observation());
  const held = page.locator('section[data-pool="Held"]');
  await held.locator('.badge.operator-paused').waitFor({ timeout: 10_000 });
  assert.equal(await held.locator('.badge.operator-paused').innerText(), 'paused');
  assert.match((await held.locator('.badge.operator-paused').getAttribute('title')) ?? '', /^paused since \S+ by 127\.0\.0\.1:5555$/);
  assert.match(await held.locator('.flow').innerText(), /^paused since .+ by 127\.0\.0\.1:5555: no new jobs, running jobs finish$/);
  const split = page.locator('section[data-pool="Split"]');
  assert.equal(await split.locator('.badge.operator-paused').innerText(), '1 function paused by operator');
  assert.match(await split.locator('.flow').innerText(), /^functions paused: Resize \(since .+\)$/);
  const flowing = page.locator('section[data-pool="Flowing"]');
  assert.deepEqual([await flowing.locator('.badge.operator-paused').count(), await flowing.locator('.flow').count()], [0, 0]);
  assert.equal(await page.locator('#ready .badge').innerText(), 'ready', 'a paused pool is ready');
  assert.deepEqual(problems, [], 'no script errors and nothing blocked by the CSP');
});
