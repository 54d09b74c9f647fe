/**
 * The status page's breaker display, rendered by headless Chromium from the real Exporter fed with a
 * snapshot (no daemon: the page is a function of /status).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { zeroCounters } from '../../src/ipc/counters.js';
import type { DeliveryStatus } from '../../src/ipc/messages.js';
import { Exporter } from '../../src/observe/exporter.js';
import type { ChildObservation, Observation } from '../../src/observe/observation.js';
import { emptyMetrics } from '../../src/ipc/metrics.js';
import { pool, server } from '../master/support.js';
import { memoryLogger } from '../helpers/memory-logger.js';

const CHROMIUM = '/usr/bin/chromium';

function child(name: string, pid: number, delivery: DeliveryStatus | undefined): ChildObservation {
  return {
    pool: name,
    state: 'running',
    pid,
    restarts: 0,
    failReason: null,
    retiring: false,
    status: { pool: name, pid, slots: [{ id: `${pid}-1`, stopping: false, job: null, connectedServers: 1 }], counters: zeroCounters(), delivery },
    statusError: null,
  };
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
    pools: { Flowing: pool('Flowing', { workerCount: 1 }), Tripped: pool('Tripped', { workerCount: 1 }), Legacy: pool('Legacy', { workerCount: 1 }) },
    poolNames: ['Flowing', 'Tripped', 'Legacy'],
    children: [
      child('Flowing', 11, { breaker: 'closed', since: now - 50_000, lastReason: null, admitted: 1, retrying: 0, opened: 0 }),
      child('Tripped', 12, { breaker: 'open', since: now - 3000, lastReason: 'HTTP 503 from the endpoint', admitted: 0, retrying: 1, opened: 2 }),
      // A child that reports no delivery status (an older one): no breaker shown rather than a guess.
      child('Legacy', 13, undefined),
    ],
    totals: new Map([
      ['Flowing', { counters: zeroCounters(), metrics: emptyMetrics(), restarts: 0, breakerOpened: 0 }],
      ['Tripped', { counters: { ...zeroCounters(), jobs_retried: 4, jobs_handed_back: 1, jobs_dead_lettered: 3 }, metrics: emptyMetrics(), restarts: 0, breakerOpened: 2 }],
    ]),
    reloads: { ok: 0, failed: 0 },
    childRestarts: 0,
  };
}

test('the status page should show each pool\'s breaker state, its reason and the delivery counts', { skip: existsSync(CHROMIUM) ? false : 'chromium not installed' }, async (t) => {
  const { logger } = memoryLogger();
  const exporter = new Exporter({ host: '127.0.0.1', port: 0, logger, source: { observe: () => Promise.resolve(observation()), gearmandScrapes: () => [] } });
  t.after(() => exporter.close());
  const { port } = await exporter.listen();
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  await page.goto(`http://127.0.0.1:${port}/`);
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
  // The header's readiness badge names the tripped pool.
  assert.match(await page.locator('#ready .badge').getAttribute('title') ?? '', /^Tripped: circuit breaker open since /);
  assert.deepEqual(problems, [], 'no script errors and nothing blocked by the CSP');
});
