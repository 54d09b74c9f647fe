import assert from 'node:assert/strict';
import { test } from 'node:test';
import { zeroCounters } from '../../src/ipc/counters.js';
import { addMetrics, DURATION_BUCKETS, emptyFunctionMetrics, sanitizeMetrics } from '../../src/ipc/metrics.js';
import { sanitizeServers } from '../../src/ipc/messages.js';
import type { ChildStatus, DeliveryStatus, SlotStatus } from '../../src/ipc/messages.js';
import { metricFamilies, poolDelivery, poolSuspectServers, readiness, slotState, statusDocument } from '../../src/observe/observation.js';
import type { ChildObservation, Observation, PoolTotals } from '../../src/observe/observation.js';
import type { GearmandScrape } from '../../src/observe/gearmand-poller.js';
import { allPausedReason, functionBreakers } from '../../src/observe/function-breaker-view.js';
import { formatExposition } from '../../src/observe/prometheus.js';
import { gaugesText } from '../../src/observe/status-text.js';
import { observationOf, pool, server } from '../master/support.js';

const A = server(4730);
const B = server(4731);

function slot(id: string, overrides: Partial<SlotStatus> = {}): SlotStatus {
  return {
    id,
    stopping: false,
    job: null,
    connectedServers: 1,
    connections: [
      { server: A.label, state: 'sleeping', connected: true },
      { server: B.label, state: 'backoff', connected: false },
    ],
    ...overrides,
  };
}

function child(poolName: string, slots: SlotStatus[], overrides: Partial<ChildObservation> = {}): ChildObservation {
  const status: ChildStatus = { pool: poolName, pid: 100, slots, counters: zeroCounters() };
  return { pool: poolName, state: 'running', pid: 100, restarts: 0, failReason: null, retiring: false, status, statusError: null, ...overrides };
}

function totals(): PoolTotals {
  const sum = emptyFunctionMetrics();
  sum.completed = 3;
  sum.failed = 1;
  sum.buckets[0] = 1;
  sum.buckets[3] = 3;
  sum.durationSum = 0.061;
  return {
    counters: { ...zeroCounters(), jobs_completed: 3, jobs_failed: 1, http_errors: 1 },
    metrics: { functions: { Sum: sum }, http: { '200': 3, '500': 1 } },
    restarts: 2,
    breakerOpened: 0,
    functionBreakerOpened: new Map(),
  };
}

function observation(overrides: Partial<Observation> = {}): Observation {
  const regular = pool('Regular', { workerCount: 3, jobsList: ['Sum', 'Sum2'] });
  const off = pool('Off', { workerCount: 0, jobsList: ['X'] });
  return observationOf({
    servers: [A, B],
    pools: { Regular: regular, Off: off },
    poolNames: ['Regular', 'Off'],
    children: [
      child('Regular', [
        slot('100-1'),
        slot('100-2', { job: { handle: 'H:x:1', unique: 'u-1', functionName: 'Sum', server: A.label, startedAt: 1_700_000_008_500 }, connections: [{ server: A.label, state: 'running', connected: true }, { server: B.label, state: 'backoff', connected: false }] }),
        slot('100-3', { stopping: true }),
      ]),
    ],
    totals: new Map([['Regular', totals()]]),
    reloads: { ok: 2, failed: 1 },
    childRestarts: 2,
    ...overrides,
  });
}

const SCRAPES: GearmandScrape[] = [
  { server: A.label, ok: true, at: 1, durationMs: 1, functions: [{ function: 'Sum', total: 7, running: 1, availableWorkers: 3 }], error: null },
  { server: B.label, ok: false, at: 1, durationMs: 1, functions: [], error: 'ECONNREFUSED' },
];

test('metricFamilies should sum a pool, pre-create configured functions at zero and label every series', () => {
  const text = formatExposition(metricFamilies(observation(), SCRAPES));
  const lines = new Set(text.split('\n'));
  for (const line of [
    'driveshaft_jobs_total{pool="Regular",function="Sum",outcome="completed"} 3',
    'driveshaft_jobs_total{pool="Regular",function="Sum",outcome="failed"} 1',
    'driveshaft_jobs_total{pool="Regular",function="Sum",outcome="timed_out"} 0',
    'driveshaft_jobs_total{pool="Regular",function="Sum2",outcome="completed"} 0',
    'driveshaft_jobs_total{pool="Off",function="X",outcome="requeued"} 0',
    'driveshaft_job_duration_seconds_bucket{pool="Regular",function="Sum",le="0.001"} 1',
    'driveshaft_job_duration_seconds_bucket{pool="Regular",function="Sum",le="0.025"} 4',
    'driveshaft_job_duration_seconds_bucket{pool="Regular",function="Sum",le="+Inf"} 4',
    'driveshaft_job_duration_seconds_sum{pool="Regular",function="Sum"} 0.061',
    'driveshaft_job_duration_seconds_count{pool="Regular",function="Sum"} 4',
    'driveshaft_http_responses_total{pool="Regular",code="200"} 3',
    'driveshaft_http_responses_total{pool="Regular",code="500"} 1',
    'driveshaft_slots{pool="Regular",state="idle"} 1',
    'driveshaft_slots{pool="Regular",state="busy"} 1',
    'driveshaft_slots{pool="Regular",state="stopping"} 1',
    'driveshaft_slots{pool="Off",state="idle"} 0',
    `driveshaft_gearmand_up{server="${A.label}"} 1`,
    `driveshaft_gearmand_up{server="${B.label}"} 0`,
    `driveshaft_gearmand_scrape_ok{server="${A.label}"} 1`,
    `driveshaft_gearmand_scrape_ok{server="${B.label}"} 0`,
    `driveshaft_gearmand_queue_jobs{server="${A.label}",function="Sum"} 7`,
    `driveshaft_gearmand_queue_running_jobs{server="${A.label}",function="Sum"} 1`,
    `driveshaft_gearmand_queue_workers{server="${A.label}",function="Sum"} 3`,
    'driveshaft_reloads_total{result="ok"} 2',
    'driveshaft_reloads_total{result="failed"} 1',
    'driveshaft_child_restarts_total{pool="Regular"} 2',
    'driveshaft_child_restarts_total{pool="Off"} 0',
  ]) {
    assert.ok(lines.has(line), `missing: ${line}\n${text}`);
  }
  // The failed gearmand has no queue series: no stale numbers.
  assert.ok(!text.includes(`driveshaft_gearmand_queue_jobs{server="${B.label}"`));
});

test('metricFamilies should keep exporting the counters of a pool removed from the config', () => {
  const obs = observation();
  const text = formatExposition(metricFamilies({ ...obs, totals: new Map([...obs.totals, ['Gone', totals()]]) }, []));
  assert.match(text, /^driveshaft_jobs_total\{pool="Gone",function="Sum",outcome="completed"\} 3$/m);
  assert.match(text, /^driveshaft_slots\{pool="Gone",state="idle"\} 0$/m);
  // …but the status page lists only configured and draining pools.
  assert.deepEqual(statusDocument({ ...obs, totals: new Map([...obs.totals, ['Gone', totals()]]) }, []).pools.map((p) => p.name), ['Regular', 'Off']);
});

test('metricFamilies should count every slot of a draining child as stopping', () => {
  const obs = observation({ children: [child('Regular', [slot('1-1'), slot('1-2', { job: { handle: 'H', unique: 'u', functionName: 'Sum', server: A.label, startedAt: 0 } })], { retiring: true })] });
  const text = formatExposition(metricFamilies(obs, []));
  assert.match(text, /^driveshaft_slots\{pool="Regular",state="stopping"\} 2$/m);
  assert.match(text, /^driveshaft_slots\{pool="Regular",state="busy"\} 0$/m);
});

test('a server one child of the pool reports suspect should show in /status, /metrics and gauges, since the earliest report', () => {
  const withServers = (c: ChildObservation, servers: ChildStatus['servers']): ChildObservation => ({ ...c, status: { ...(c.status as ChildStatus), servers } });
  // The draining child's slots still grab: its report counts too, and it saw B first.
  const serving = withServers(child('Regular', [slot('2-1')]), [
    { server: A.label, suspectSince: null },
    { server: B.label, suspectSince: 1_700_000_009_000 },
  ]);
  const draining = withServers(child('Regular', [slot('1-1')], { retiring: true, pid: 99 }), [
    { server: A.label, suspectSince: null },
    { server: B.label, suspectSince: 1_700_000_005_000 },
  ]);
  const obs = observation({ children: [serving, draining] });
  assert.deepEqual([...poolSuspectServers([serving, draining])], [[B.label, 1_700_000_005_000]]);

  const regular = statusDocument(obs, []).pools.find((p) => p.name === 'Regular');
  assert.deepEqual(
    regular?.servers.map((s) => [s.server, s.suspectSince]),
    [
      [A.label, null],
      [B.label, new Date(1_700_000_005_000).toISOString()],
    ],
  );
  const text = formatExposition(metricFamilies(obs, []));
  assert.match(text, new RegExp(`^driveshaft_gearmand_suspect\\{pool="Regular",server="${B.label}"\\} 1$`, 'm'));
  assert.match(text, new RegExp(`^driveshaft_gearmand_suspect\\{pool="Regular",server="${A.label}"\\} 0$`, 'm'));
  // A pool without a child (worker_count 0) has no suspect server.
  assert.match(text, new RegExp(`^driveshaft_gearmand_suspect\\{pool="Off",server="${B.label}"\\} 0$`, 'm'));
  assert.match(gaugesText(obs), /^Regular\.suspect_servers: 1$/m);
  assert.match(gaugesText(obs), /^Off\.suspect_servers: 0$/m);

  // What a child sent is kept only as far as it makes sense: a label, and a time or null.
  assert.deepEqual(sanitizeServers([{ server: A.label, suspectSince: 5 }, { server: B.label, suspectSince: 'soon' }, { suspectSince: 1 }, null, 7]), [
    { server: A.label, suspectSince: 5 },
    { server: B.label, suspectSince: null },
  ]);
  assert.equal(sanitizeServers(undefined), undefined);
  // Older children report no servers: nothing is suspect, /status says null.
  const quiet = observation();
  assert.deepEqual(statusDocument(quiet, []).pools[0]?.servers.map((s) => s.suspectSince), [null, null]);
  assert.match(gaugesText(quiet), /^Regular\.suspect_servers: 0$/m);
});

test('slotState and the status document should agree with the threads shutdown flag', () => {
  const obs = observation();
  const doc = statusDocument(obs, SCRAPES);
  const regular = doc.pools[0];
  assert.ok(regular !== undefined);
  assert.deepEqual(regular.slots.map((s) => [s.id, s.state, s.stopping]), [
    ['100-1', 'idle', false],
    ['100-2', 'busy', false],
    ['100-3', 'stopping', true],
  ]);
  assert.deepEqual(regular.slots[1]?.job, { handle: 'H:x:1', unique: 'u-1', function: 'Sum', server: A.label, startedAt: new Date(1_700_000_008_500).toISOString(), ageMs: 1500 });
  assert.deepEqual(regular.slotCounts, { idle: 1, busy: 1, stopping: 1 });
  assert.deepEqual(regular.servers, [
    { server: A.label, connectedSlots: 3, slots: 3, states: { sleeping: 2, running: 1 }, suspectSince: null },
    { server: B.label, connectedSlots: 0, slots: 3, states: { backoff: 3 }, suspectSince: null },
  ]);
  assert.equal(regular.counters.jobs_completed, 3);
  assert.deepEqual(regular.jobs.Sum, { completed: 3, failed: 1, timedOut: 0, requeued: 0, count: 4, durationSumSeconds: 0.061 });
  assert.equal(doc.config.file, '/etc/driveshaft/jobs.json');
  assert.equal(doc.uptimeSeconds, 10);
  assert.deepEqual(doc.gearmand.map((g) => [g.server, g.up, g.scrapeOk]), [[A.label, true, true], [B.label, false, false]]);
  const firstChild = obs.children[0] as ChildObservation;
  assert.equal(slotState(firstChild.status?.slots[2] as SlotStatus, firstChild), 'stopping');
});

test('statusDocument should hide the password of the endpoint URI (the one redaction rule)', () => {
  const obs = observation();
  const pools = { ...obs.pools, Regular: { ...(obs.pools.Regular as ReturnType<typeof pool>), jobProcessingUri: 'https://user:secret@example.com/job.php' } };
  const doc = statusDocument({ ...obs, pools }, []);
  assert.equal(doc.pools[0]?.uri, 'https://user:***@example.com/job.php');
});

test('readiness should want a registered slot in every pool with workers, and name the pools that have none', () => {
  assert.deepEqual(readiness(observation()), { ready: true, problems: [] });
  const disconnected = observation({ children: [child('Regular', [slot('1-1', { connectedServers: 0 }), slot('1-2', { connectedServers: 0 })])] });
  const verdict = readiness(disconnected);
  assert.equal(verdict.ready, false);
  assert.equal(verdict.problems.length, 1);
  assert.equal(verdict.problems[0]?.pool, 'Regular');
  assert.match(verdict.problems[0]?.reason ?? '', /no slot is registered with any gearmand \(2 slots, 2 servers/);
  // A pool with worker_count 0 never blocks readiness; a missing, failed or silent child does.
  assert.equal(readiness(observation({ children: [] })).problems[0]?.reason, 'no child process');
  assert.match(readiness(observation({ children: [child('Regular', [], { state: 'failed', status: null, pid: null, failReason: 'crash loop: 11 exits' })] })).problems[0]?.reason ?? '', /marked failed \(crash loop: 11 exits\)/);
  assert.match(readiness(observation({ children: [child('Regular', [], { status: null, statusError: 'timed out' })] })).problems[0]?.reason ?? '', /child not answering \(timed out\)/);
  assert.match(readiness(observation({ state: 'stopping' })).problems[0]?.reason ?? '', /the daemon is stopping/);
});

function delivery(overrides: Partial<DeliveryStatus> = {}): DeliveryStatus {
  return { breaker: 'closed', since: 1_700_000_005_000, lastReason: null, admitted: 3, retrying: 0, opened: 0, ...overrides };
}

function withDelivery(d: DeliveryStatus, overrides: Partial<ChildObservation> = {}): ChildObservation {
  const base = child('Regular', [slot('100-1'), slot('100-2')], overrides);
  return { ...base, status: base.status === null ? null : { ...base.status, delivery: d } };
}

test('metricFamilies should export the delivery counters from the pool totals and the breaker state of the serving child', () => {
  const obs = observation({
    children: [withDelivery(delivery({ breaker: 'open', lastReason: 'HTTP 503', admitted: 0, retrying: 2, opened: 1 }))],
    totals: new Map([['Regular', { ...totals(), counters: { ...totals().counters, jobs_retried: 7, jobs_handed_back: 2, jobs_dead_lettered: 1 }, breakerOpened: 4 }]]),
  });
  const text = formatExposition(metricFamilies(obs, []));
  for (const line of [
    '# TYPE driveshaft_jobs_retried_total counter',
    'driveshaft_jobs_retried_total{pool="Regular"} 7',
    'driveshaft_jobs_handed_back_total{pool="Regular"} 2',
    'driveshaft_jobs_dead_lettered_total{pool="Regular"} 1',
    '# TYPE driveshaft_breaker_opened_total counter',
    // Cumulative over every child the pool had, not the current child's own count.
    'driveshaft_breaker_opened_total{pool="Regular"} 4',
    'driveshaft_jobs_retried_total{pool="Off"} 0',
    '# TYPE driveshaft_breaker_state gauge',
    'driveshaft_breaker_state{pool="Regular",state="closed"} 0',
    'driveshaft_breaker_state{pool="Regular",state="open"} 1',
    'driveshaft_breaker_state{pool="Regular",state="half-open"} 0',
    'driveshaft_retrying_jobs{pool="Regular"} 2',
    'driveshaft_admitted_slots{pool="Regular"} 0',
  ]) {
    assert.ok(text.split('\n').includes(line), `missing ${line}`);
  }
  // A pool no child reports for has no state series (no stale "closed").
  assert.doesNotMatch(text, /driveshaft_breaker_state\{pool="Off"/);
  // A child that reports no delivery (an older one) leaves the state series out too.
  assert.doesNotMatch(formatExposition(metricFamilies(observation(), [])), /driveshaft_breaker_state\{/);
});

test('poolDelivery should prefer the serving child over a draining one', () => {
  const draining = withDelivery(delivery({ breaker: 'open' }), { retiring: true });
  const serving = withDelivery(delivery({ breaker: 'half-open' }));
  assert.equal(poolDelivery([draining, serving])?.breaker, 'half-open');
  assert.equal(poolDelivery([draining])?.breaker, 'open');
  assert.equal(poolDelivery([child('Regular', [])]), null);
});

test('readiness should refuse a pool whose breaker is open or half-open, naming the pool and the breaker\'s last reason', () => {
  assert.deepEqual(readiness(observation({ children: [withDelivery(delivery())] })), { ready: true, problems: [] });
  for (const breaker of ['open', 'half-open'] as const) {
    const verdict = readiness(observation({ children: [withDelivery(delivery({ breaker, lastReason: 'HTTP 503 from the endpoint', admitted: 0 }))] }));
    assert.equal(verdict.ready, false, breaker);
    assert.equal(verdict.problems[0]?.pool, 'Regular');
    assert.equal(verdict.problems[0]?.reason, `circuit breaker ${breaker} since 2023-11-14T22:13:25.000Z (HTTP 503 from the endpoint)`);
  }
});

test('statusDocument should give each pool a delivery object, null while no child reports one', () => {
  const obs = observation({
    children: [withDelivery(delivery({ breaker: 'half-open', lastReason: 'timeout', admitted: 1, retrying: 1, opened: 1 }))],
    totals: new Map([['Regular', { ...totals(), breakerOpened: 3 }]]),
  });
  const doc = statusDocument(obs, []);
  assert.deepEqual(doc.pools.find((p) => p.name === 'Regular')?.delivery, {
    breaker: 'half-open',
    since: '2023-11-14T22:13:25.000Z',
    lastReason: 'timeout',
    admittedSlots: 1,
    retrying: 1,
    openedTotal: 3,
    functions: {},
  });
  assert.equal(doc.pools.find((p) => p.name === 'Off')?.delivery, null);
});

test('addMetrics should sum functions, buckets and codes; sanitizeMetrics should zero what is malformed', () => {
  const a = sanitizeMetrics({ functions: { F: { completed: 1, failed: 0, timedOut: 0, requeued: 0, buckets: [1, ...new Array<number>(DURATION_BUCKETS.length).fill(0)], durationSum: 0.5 } }, http: { '200': 1 } });
  const b = sanitizeMetrics({ functions: { F: { completed: 2, failed: 'x', timedOut: -1, requeued: Number.NaN, buckets: [1, 2], durationSum: 1 }, G: null }, http: { '200': 2, error: 1, bad: 'no' } });
  assert.deepEqual(b.functions.F?.buckets, new Array(DURATION_BUCKETS.length + 1).fill(0), 'wrong-length buckets are dropped');
  assert.equal(b.functions.G, undefined);
  const sum = addMetrics(a, b);
  assert.equal(sum.functions.F?.completed, 3);
  assert.equal(sum.functions.F?.failed, 0);
  assert.equal(sum.functions.F?.timedOut, 0);
  assert.equal(sum.functions.F?.durationSum, 1.5);
  assert.equal(sum.functions.F?.buckets[0], 1);
  assert.deepEqual(sum.http, { '200': 3, error: 1, bad: 0 });
  assert.deepEqual(sanitizeMetrics(undefined), { functions: {}, http: {} });
  // Neither argument changes.
  assert.equal(a.functions.F?.completed, 1);
});

/** Regular's functions are Sum and Sum2; `Stale` was dropped from its jobs_list by a reload but the child keeps its breaker. */
function functionDelivery(functions: DeliveryStatus['functions'], overrides: Partial<DeliveryStatus> = {}): DeliveryStatus {
  return delivery({ functions, ...overrides });
}

const SUM_OPEN = { breaker: 'open', since: 1_700_000_007_000, lastReason: 'HTTP 503 from http://127.0.0.1:8080/job', opened: 2 } as const;

test('metricFamilies should export each function breaker\'s state one-hot and its openings over every child', () => {
  const obs = observation({
    children: [withDelivery(functionDelivery({ Sum: SUM_OPEN, Stale: { ...SUM_OPEN } }))],
    // 3 openings of Sum in a child before this one; Gone left jobs_list after its breaker opened once.
    totals: new Map([['Regular', { ...totals(), functionBreakerOpened: new Map([['Sum', 5], ['Gone', 1]]) }]]),
  });
  const text = formatExposition(metricFamilies(obs, []));
  const lines = text.split('\n');
  for (const line of [
    '# TYPE driveshaft_function_breaker_state gauge',
    'driveshaft_function_breaker_state{pool="Regular",function="Sum",state="closed"} 0',
    'driveshaft_function_breaker_state{pool="Regular",function="Sum",state="open"} 1',
    'driveshaft_function_breaker_state{pool="Regular",function="Sum",state="half-open"} 0',
    '# TYPE driveshaft_function_breaker_opened_total counter',
    'driveshaft_function_breaker_opened_total{pool="Regular",function="Sum"} 5',
    // Configured functions have their counter from the start, at zero; a function counted before stays.
    'driveshaft_function_breaker_opened_total{pool="Regular",function="Sum2"} 0',
    'driveshaft_function_breaker_opened_total{pool="Regular",function="Gone"} 1',
    'driveshaft_function_breaker_opened_total{pool="Off",function="X"} 0',
  ]) {
    assert.ok(lines.includes(line), `missing ${line}\n${text}`);
  }
  // No breaker, no state series (Sum2 never failed); a function no longer configured shows none either.
  assert.doesNotMatch(text, /driveshaft_function_breaker_state\{pool="Regular",function="Sum2"/);
  assert.doesNotMatch(text, /function="Stale"/);
  // A child that reports no delivery leaves the state series out, like the pool breaker's.
  assert.doesNotMatch(formatExposition(metricFamilies(observation(), [])), /driveshaft_function_breaker_state\{/);
});

test('statusDocument should list the breakers of the pool\'s functions with ISO times and the openings over every child', () => {
  const obs = observation({
    children: [withDelivery(functionDelivery({ Sum: SUM_OPEN, Sum2: { breaker: 'closed', since: 1_700_000_009_000, lastReason: 'timeout', opened: 0 }, Stale: SUM_OPEN }))],
    totals: new Map([['Regular', { ...totals(), functionBreakerOpened: new Map([['Sum', 5]]) }]]),
  });
  const regular = statusDocument(obs, []).pools.find((p) => p.name === 'Regular');
  assert.deepEqual(regular?.delivery?.functions, {
    Sum: { breaker: 'open', since: '2023-11-14T22:13:27.000Z', lastReason: 'HTTP 503 from http://127.0.0.1:8080/job', openedTotal: 5 },
    Sum2: { breaker: 'closed', since: '2023-11-14T22:13:29.000Z', lastReason: 'timeout', openedTotal: 0 },
  });
  assert.equal(regular?.delivery?.breaker, 'closed', 'the pool breaker is its own');
  assert.deepEqual(statusDocument(observation({ children: [withDelivery(delivery())] }), []).pools[0]?.delivery?.functions, {});
});

test('readiness should refuse a pool only when every one of its functions is paused, open or half-open', () => {
  const ready = (functions: DeliveryStatus['functions']) => readiness(observation({ children: [withDelivery(functionDelivery(functions))] }));
  // One function paused, the other runs: the pool serves.
  assert.deepEqual(ready({ Sum: SUM_OPEN }), { ready: true, problems: [] });
  assert.deepEqual(ready({ Sum: SUM_OPEN, Sum2: { ...SUM_OPEN, breaker: 'closed' } }), { ready: true, problems: [] });
  // A breaker left over for a function no longer configured does not count.
  assert.deepEqual(ready({ Sum: SUM_OPEN, Stale: SUM_OPEN }), { ready: true, problems: [] });
  const verdict = ready({ Sum: SUM_OPEN, Sum2: { breaker: 'half-open', since: 1_700_000_008_000, lastReason: null, opened: 1 } });
  assert.deepEqual(verdict, {
    ready: false,
    problems: [
      {
        pool: 'Regular',
        reason: 'every function is paused by its circuit breaker: Sum open since 2023-11-14T22:13:27.000Z (HTTP 503 from http://127.0.0.1:8080/job); Sum2 half-open since 2023-11-14T22:13:28.000Z',
      },
    ],
  });
  // The pool breaker's reason comes first: it is the one to fix.
  const both = readiness(observation({ children: [withDelivery(functionDelivery({ Sum: SUM_OPEN, Sum2: SUM_OPEN }, { breaker: 'open', lastReason: 'ECONNREFUSED' }))] }));
  assert.match(both.problems[0]?.reason ?? '', /^circuit breaker open since .* \(ECONNREFUSED\)$/);
});

test('functionBreakers should read only own entries, so functions named "__proto__" or "constructor" are themselves', () => {
  const reported = JSON.parse('{"__proto__":{"breaker":"open","since":0,"lastReason":"HTTP 503","opened":1}}') as DeliveryStatus['functions'];
  assert.deepEqual(
    functionBreakers(functionDelivery(reported), ['constructor', '__proto__', 'toString']).map((b) => [b.function, b.breaker]),
    [['__proto__', 'open']],
  );
  const many = Object.fromEntries(['a', 'b', 'c', 'd', 'e'].map((name) => [name, SUM_OPEN]));
  assert.match(allPausedReason(functionBreakers(functionDelivery(many), ['a', 'b', 'c', 'd', 'e']), ['a', 'b', 'c', 'd', 'e']) ?? '', /: a open .*; b open .*; c open [^;]*; and 2 more$/);
  assert.equal(allPausedReason([], []), null, 'a pool without functions is not "all paused"');
});
