/**
 * The status page's breaker display, rendered by headless Chromium from the real Exporter fed with a
 * snapshot (no daemon: the page is a function of /status).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { zeroCounters } from '../../src/ipc/counters.js';
import type { DeliveryStatus } from '../../src/ipc/messages.js';
import type { ChildObservation, Observation } from '../../src/observe/observation.js';
import { emptyMetrics } from '../../src/ipc/metrics.js';
import { pool, runningChild, server } from '../master/support.js';
import { NEEDS_CHROMIUM, openStatusPage } from '../helpers/status-page-browser.js';

function child(name: string, pid: number, delivery: DeliveryStatus | undefined): ChildObservation {
  return runningChild(name, pid, { delivery });
}

function observation(): Observation {
  const now = Date.now();
  return {
    takenAt: now,
    version: 'driveshaft test',
    pid: process.pid,
    state: 'running',
    startedAt: now - 60_000,
    configFile: '/tmp/jobs.json',
    configLoadedAt: now - 60_000,
    servers: [server()],
    pools: {
      Flowing: pool('Flowing', { workerCount: 1 }),
      Tripped: pool('Tripped', { workerCount: 1 }),
      Legacy: pool('Legacy', { workerCount: 1 }),
      Split: pool('Split', { workerCount: 2, jobsList: ['Resize', 'Sum', 'Report'] }),
    },
    poolNames: ['Flowing', 'Tripped', 'Legacy', 'Split'],
    children: [
      child('Flowing', 11, { breaker: 'closed', since: now - 50_000, lastReason: null, admitted: 1, retrying: 0, opened: 0 }),
      child('Tripped', 12, { breaker: 'open', since: now - 3000, lastReason: 'HTTP 503 from the endpoint', admitted: 0, retrying: 1, opened: 2 }),
      // A child that reports no delivery status (an older one): no breaker shown rather than a guess.
      child('Legacy', 13, undefined),
      // The pool breaker closed, one function open, one half-open, one recovered (closed): two paused.
      child('Split', 14, {
        breaker: 'closed',
        since: now - 50_000,
        lastReason: null,
        admitted: 2,
        retrying: 0,
        opened: 0,
        functions: {
          Resize: { breaker: 'open', since: now - 95_000, lastReason: 'HTTP 503 from http://127.0.0.1:8080/resize', opened: 3 },
          Sum: { breaker: 'closed', since: now - 10_000, lastReason: 'timeout', opened: 1 },
          Report: { breaker: 'half-open', since: now - 2000, lastReason: null, opened: 1 },
        },
      }),
    ],
    totals: new Map([
      ['Flowing', { counters: zeroCounters(), metrics: emptyMetrics(), restarts: 0, breakerOpened: 0, functionBreakerOpened: new Map() }],
      ['Tripped', { counters: { ...zeroCounters(), jobs_retried: 4, jobs_handed_back: 1, jobs_dead_lettered: 3 }, metrics: emptyMetrics(), restarts: 0, breakerOpened: 2, functionBreakerOpened: new Map() }],
      ['Split', { counters: zeroCounters(), metrics: emptyMetrics(), restarts: 0, breakerOpened: 0, functionBreakerOpened: new Map([['Resize', 4], ['Sum', 1], ['Report', 1]]) }],
    ]),
    reloads: { ok: 0, failed: 0 },
    childRestarts: 0,
  };
}

test('the status page should show each pool\'s breaker state, its reason and the delivery counts', NEEDS_CHROMIUM, async (t) => {
  const { page, problems } = await openStatusPage(t, observation());
  const tripped = page.locator('section[data-pool="Tripped"]');
  await tripped.locator('.badge.breaker').waitFor({ timeout: 10_000 });
  assert.equal(await tripped.locator('.badge.breaker').innerText(), 'breaker open');
  assert.match(await tripped.locator('.badge.breaker').getAttribute('class') ?? '', /\bbad\b/);
  assert.equal(await tripped.locator('.badge.breaker').getAttribute('title'), 'HTTP 503 from the endpoint');
  const line = await tripped.locator('.delivery').innerText();
  assert.match(line, /^breaker open since .+: HTTP 503 from the endpoint · 0 \/ 1 slots admitted · 1 retrying · opened 2× · retried 4, handed back 1, dead-lettered 3$/);
  const flowing = page.locator('section[data-pool="Flowing"]');
  assert.equal(await flowing.locator('.badge.breaker').innerText(), 'breaker closed');
  assert.match(await flowing.locator('.delivery').innerText(), /^breaker closed · 1 \/ 1 slots admitted · 0 retrying/);
  assert.equal(await page.locator('section[data-pool="Legacy"] .badge.breaker').count(), 0);
  assert.equal(await flowing.locator('ul.paused').count(), 0, 'no paused functions, no list');
  assert.equal(await flowing.locator('.badge.paused').count(), 0);
  // A pool whose own breaker is closed lists the functions its breakers paused, with since and why.
  const split = page.locator('section[data-pool="Split"]');
  assert.equal(await split.locator('.badge.breaker').innerText(), 'breaker closed');
  assert.equal(await split.locator('.badge.paused').innerText(), '2 functions paused');
  assert.match(await split.locator('.badge.paused').getAttribute('class') ?? '', /\bbad\b/);
  assert.equal(await split.locator('.badge.paused').getAttribute('title'), 'Resize open: HTTP 503 from http://127.0.0.1:8080/resize\nReport half-open');
  assert.match(await split.getByRole('heading', { name: /Paused functions/ }).innerText(), /^paused functions \(2\)$/i);
  const items = split.locator('ul.paused li');
  assert.deepEqual(await items.evaluateAll((lis) => lis.map((li) => li.getAttribute('data-function'))), ['Resize', 'Report'], 'in jobs_list order, the closed one left out');
  const resize = items.nth(0);
  assert.equal(await resize.locator('.name').innerText(), 'Resize');
  assert.equal(await resize.locator('.badge').innerText(), 'open');
  assert.match(await resize.locator('.since').innerText(), /^since \S.* \(1 min 3\d s\)$/);
  assert.equal(await resize.locator('.opened').innerText(), 'opened 4×', 'over every child the pool had');
  assert.equal(await resize.locator('.reason').innerText(), 'HTTP 503 from http://127.0.0.1:8080/resize');
  const report = items.nth(1);
  assert.deepEqual([await report.locator('.badge').innerText(), await report.locator('.opened').innerText(), await report.locator('.reason').count()], ['half-open', 'opened 1×', 0]);
  // The header's readiness badge names the tripped pool.
  assert.match(await page.locator('#ready .badge').getAttribute('title') ?? '', /^Tripped: circuit breaker open since /);
  assert.deepEqual(problems, [], 'no script errors and nothing blocked by the CSP');
});

test('the status page should mark a gearmand the pool skips because a GRAB went unanswered', NEEDS_CHROMIUM, async (t) => {
  const [a, b] = [server(4730), server(4731)];
  const since = Date.now() - 20_000;
  const obs = observation();
  obs.servers = [a, b];
  obs.children = obs.children.map((c) =>
    c.pool !== 'Flowing'
      ? c
      : runningChild('Flowing', 11, {
          servers: [
            { server: a.label, suspectSince: null },
            { server: b.label, suspectSince: since },
          ],
        }),
  );
  const { page, problems } = await openStatusPage(t, obs);
  const flowing = page.locator('section[data-pool="Flowing"]');
  const rows = flowing.locator('h3:text("gearmand connections") + table tr');
  await rows.first().waitFor({ timeout: 10_000 });
  assert.equal(await rows.count(), 2);
  assert.equal(await rows.nth(0).locator('td.warn').count(), 0, 'the server that answers is not marked');
  assert.equal(await rows.nth(1).locator('td.warn').innerText(), `not answering since ${await page.evaluate((at) => new Date(at).toLocaleTimeString(), since)}: skipped`);
  // Another pool's children report nothing suspect: its rows stay unmarked.
  assert.equal(await page.locator('section[data-pool="Tripped"] td.warn').count(), 0);
  assert.deepEqual(problems, [], 'no script errors and nothing blocked by the CSP');
});
