import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sanitizeFlow } from '../../src/ipc/messages.js';
import type { FlowStatus } from '../../src/ipc/messages.js';
import { metricFamilies, statusDocument } from '../../src/observe/observation.js';
import type { ChildObservation, Observation } from '../../src/observe/observation.js';
import { formatExposition } from '../../src/observe/prometheus.js';
import { gaugesText } from '../../src/observe/status-text.js';
import { observationOf, pool, runningChild } from '../master/support.js';

const ADAPTIVE: FlowStatus = { paused: false, pausedFunctions: [], concurrency: 'adaptive', concurrencyLimit: 18, baselineMs: 101.5, ratePerSecond: 50, burst: 10, tokens: 3, waitingSlots: 182 };
const FIXED: FlowStatus = { paused: false, pausedFunctions: [], concurrency: 'fixed', concurrencyLimit: 4, baselineMs: null, ratePerSecond: null, burst: null, tokens: null, waitingSlots: 0 };

function child(name: string, pid: number, flow: FlowStatus | undefined, retiring = false): ChildObservation {
  return runningChild(name, pid, { slots: [], ...(flow === undefined ? {} : { flow }) }, { retiring });
}

/** Shaped serves with flow control (its old child drains with other figures); Plain has none; Legacy's child reports no flow. */
function observation(): Observation {
  return observationOf({
    pools: { Shaped: pool('Shaped', { workerCount: 200 }), Plain: pool('Plain', { workerCount: 4 }), Legacy: pool('Legacy', { workerCount: 1 }) },
    poolNames: ['Shaped', 'Plain', 'Legacy'],
    children: [child('Shaped', 10, { ...ADAPTIVE, concurrencyLimit: 7 }, true), child('Shaped', 11, ADAPTIVE), child('Plain', 12, FIXED), child('Legacy', 13, undefined)],
  });
}

test('gauges should show each pool\'s concurrency limit and rate limit, from its serving child', () => {
  const lines = gaugesText(observation()).split('\r\n');
  for (const line of [
    'Shaped.concurrency: adaptive',
    'Shaped.concurrency_limit: 18',
    'Shaped.rate_limit: 50',
    'Shaped.rate_tokens: 3',
    'Shaped.waiting_slots: 182',
    'Plain.concurrency: fixed',
    'Plain.concurrency_limit: 4',
    'Plain.rate_limit: none',
    'Legacy.concurrency: unknown',
    'Legacy.rate_limit: unknown',
  ]) {
    assert.ok(lines.includes(line), line);
  }
  assert.ok(!lines.some((line) => line.startsWith('Plain.rate_tokens')), 'no tokens line without a rate limit');
});

test('/metrics should export the limits where a child reports them', () => {
  const text = formatExposition(metricFamilies(observation(), []));
  assert.match(text, /^driveshaft_concurrency_limit\{pool="Shaped",mode="adaptive"\} 18$/m);
  assert.match(text, /^driveshaft_concurrency_limit\{pool="Plain",mode="fixed"\} 4$/m);
  assert.match(text, /^driveshaft_concurrency_baseline_seconds\{pool="Shaped"\} 0\.1015$/m);
  assert.match(text, /^driveshaft_rate_limit_per_second\{pool="Shaped"\} 50$/m);
  assert.match(text, /^driveshaft_rate_limit_tokens\{pool="Shaped"\} 3$/m);
  assert.match(text, /^driveshaft_waiting_slots\{pool="Shaped"\} 182$/m);
  assert.doesNotMatch(text, /^driveshaft_(concurrency|rate_limit|waiting)_\w+\{pool="Legacy"/m, 'no made-up series for a child that reports none');
  assert.doesNotMatch(text, /^driveshaft_rate_limit_per_second\{pool="Plain"/m);
});

test('/status should carry each pool\'s flow object, null when its child reports none', () => {
  const pools = statusDocument(observation(), []).pools;
  const { paused: _paused, pausedFunctions: _functions, ...adaptiveLimits } = ADAPTIVE;
  const { paused: _fixedPaused, pausedFunctions: _fixedFunctions, ...fixedLimits } = FIXED;
  assert.deepEqual(pools.find((p) => p.name === 'Shaped')?.flow.limits, adaptiveLimits);
  assert.deepEqual(pools.find((p) => p.name === 'Plain')?.flow.limits, fixedLimits);
  assert.equal(pools.find((p) => p.name === 'Legacy')?.flow.limits, null);
});

test('sanitizeFlow should keep what the views can show and drop the rest', () => {
  assert.deepEqual(sanitizeFlow(ADAPTIVE), ADAPTIVE);
  assert.equal(sanitizeFlow(undefined), null);
  assert.equal(sanitizeFlow({ ...ADAPTIVE, concurrency: 'turbo', paused: 'no' as unknown as boolean }), null, 'neither the pause nor the limits readable: nothing to show');
  assert.equal(sanitizeFlow({ ...ADAPTIVE, concurrency: 'turbo' })?.concurrency, 'fixed', 'an unknown mode of a child whose pause is readable shows as fixed');
  const odd = sanitizeFlow({ ...ADAPTIVE, concurrencyLimit: -3, tokens: -2.5, burst: Number.NaN } as FlowStatus);
  assert.deepEqual(odd, { ...ADAPTIVE, concurrencyLimit: 0, tokens: -2, burst: null });
});
