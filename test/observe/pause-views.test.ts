/**
 * How an operator's pause shows in every view (docs/operations.md, Pause and resume): `threads`,
 * `gauges`, /metrics, /status and /readyz, all rendered from the master's record in the snapshot.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SlotStatus } from '../../src/ipc/messages.js';
import { metricFamilies, pausedPools, readiness, statusDocument } from '../../src/observe/observation.js';
import type { ChildObservation, Observation, PoolPauseView } from '../../src/observe/observation.js';
import { gaugesText, threadsText } from '../../src/observe/status-text.js';
import { observationOf, pool, runningChild } from '../master/support.js';

/** A child's flow status without a rate limit or adaptive concurrency. */
const NO_LIMITS = { concurrency: 'fixed', concurrencyLimit: 2, baselineMs: null, ratePerSecond: null, burst: null, tokens: null, waitingSlots: 0 } as const;

const SINCE = Date.UTC(2026, 0, 2, 3, 4, 5);

function child(name: string, pid: number, slots: SlotStatus[]): ChildObservation {
  return runningChild(name, pid, { slots, flow: { ...NO_LIMITS, paused: true, pausedFunctions: [] } });
}

function slot(id: string, job: SlotStatus['job'] = null): SlotStatus {
  return { id, stopping: false, job, connectedServers: 1 };
}

/** Regular (paused, one slot busy) and Images (Resize paused, its other functions run). */
function observation(pauses: ReadonlyMap<string, PoolPauseView> = new Map()): Observation {
  const job = { handle: 'H:x:1', unique: 'u', functionName: 'Sum', server: '127.0.0.1:4730', startedAt: SINCE };
  return observationOf({
    takenAt: SINCE + 1000,
    pools: { Regular: pool('Regular'), Images: pool('Images', { jobsList: ['Crop', 'Resize', '__proto__'] }) },
    poolNames: ['Regular', 'Images'],
    children: [child('Regular', 20, [slot('20-1'), slot('20-2', job)]), child('Images', 30, [slot('30-1')])],
    pauses,
  });
}

const PAUSED: ReadonlyMap<string, PoolPauseView> = new Map([
  ['Regular', { pool: { since: SINCE, by: '127.0.0.1:5555' }, functions: [] }],
  ['Images', { pool: null, functions: [{ function: 'Resize', since: SINCE, by: '[::1]:6666' }, { function: '__proto__', since: SINCE, by: '[::1]:6666' }] }],
]);

test('threadsText should say Paused for the idle slots of a paused pool only', () => {
  assert.equal(threadsText(observation(PAUSED)), '20-1\tRegular\t0\tPaused\r\n20-2\tRegular\t0\tjob_handle=H:x:1 job_unique=u\r\n30-1\tImages\t0\tWaiting for work\r\n');
  assert.match(threadsText(observation()), /^20-1\tRegular\t0\tWaiting for work\r$/m);
});

test('gaugesText should have <pool>.paused for every pool and a line per paused function', () => {
  const text = gaugesText(observation(PAUSED));
  assert.match(text, /^Regular\.paused: 1\r$/m);
  assert.match(text, /^Images\.paused: 0\r$/m);
  const functionLines = text.split('\r\n').filter((line) => /^Images\.function\..*\.paused: /.test(line));
  assert.deepEqual(functionLines, ['Images.function.Resize.paused: 1', 'Images.function.__proto__.paused: 1']);
  assert.match(gaugesText(observation()), /^Regular\.paused: 0\r$/m);
});

test('metricFamilies should export driveshaft_pool_paused and driveshaft_function_paused for every configured pool and function', () => {
  const families = metricFamilies(observation(PAUSED), []);
  const samples = (name: string) => families.find((family) => family.name === name)?.samples.map((s) => [s.labels, (s as { value: number }).value]);
  assert.deepEqual(samples('driveshaft_pool_paused'), [[{ pool: 'Regular' }, 1], [{ pool: 'Images' }, 0]]);
  assert.deepEqual(samples('driveshaft_function_paused'), [
    [{ pool: 'Regular', function: 'Sum' }, 0],
    [{ pool: 'Images', function: 'Crop' }, 0],
    [{ pool: 'Images', function: 'Resize' }, 1],
    [{ pool: 'Images', function: '__proto__' }, 1],
  ]);
});

test('statusDocument should give each pool its flow, and each child the pause it reports', () => {
  const doc = statusDocument(observation(PAUSED), []);
  const regular = doc.pools.find((p) => p.name === 'Regular');
  const images = doc.pools.find((p) => p.name === 'Images');
  assert.deepEqual(regular?.flow, { paused: true, pausedSince: '2026-01-02T03:04:05.000Z', pausedBy: '127.0.0.1:5555', pausedFunctions: [], limits: regular?.flow.limits ?? null });
  assert.deepEqual(images?.flow.pausedFunctions.map((f) => f.function), ['Resize', '__proto__']);
  assert.equal(images?.flow.paused, false);
  assert.deepEqual(regular?.children[0]?.flow, { ...NO_LIMITS, paused: true, pausedFunctions: [] });
  assert.deepEqual(statusDocument(observation(), []).pools[0]?.flow, { paused: false, pausedSince: null, pausedBy: null, pausedFunctions: [], limits: statusDocument(observation(), []).pools[0]?.flow.limits ?? null });
});

test('readiness should count a paused pool as ready; pausedPools should name what is paused', () => {
  assert.equal(readiness(observation(PAUSED)).ready, true);
  assert.deepEqual(pausedPools(observation(PAUSED)), [
    { pool: 'Regular', reason: 'paused since 2026-01-02T03:04:05.000Z by 127.0.0.1:5555' },
    { pool: 'Images', reason: 'functions paused: Resize, __proto__' },
  ]);
  assert.deepEqual(pausedPools(observation()), []);
});
