import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COUNTER_NAMES, zeroCounters } from '../../src/ipc/counters.js';
import type { ChildStatus, DeliveryStatus, SlotStatus } from '../../src/ipc/messages.js';
import { emptyMetrics } from '../../src/ipc/metrics.js';
import type { ChildObservation, Observation, PoolTotals } from '../../src/observe/observation.js';
import { countersText, gaugesText, statusCommands, threadsText } from '../../src/observe/status-text.js';
import { observationOf, pool } from '../master/support.js';

function slot(id: string, overrides: Partial<SlotStatus> = {}): SlotStatus {
  return { id, stopping: false, job: null, connectedServers: 1, ...overrides };
}

function child(poolName: string, pid: number, slots: SlotStatus[] | null, overrides: Partial<ChildObservation> = {}, delivery?: DeliveryStatus): ChildObservation {
  const status: ChildStatus | null = slots === null ? null : { pool: poolName, pid, slots, counters: zeroCounters(), ...(delivery === undefined ? {} : { delivery }) };
  return { pool: poolName, state: 'running', pid, restarts: 0, failReason: null, retiring: false, status, statusError: slots === null ? 'timed out' : null, ...overrides };
}

function totals(completed: number, restarts: number, breakerOpened = 0): PoolTotals {
  return { counters: { ...zeroCounters(), jobs_completed: completed }, metrics: emptyMetrics(), restarts, breakerOpened, functionBreakerOpened: new Map() };
}

const RUNNING_JOB = { handle: 'H:vm:7', unique: 'a\tb\x7f', functionName: 'Sum', server: '127.0.0.1:4730', startedAt: 0 };

/** Regular serves with 2 slots while its old child drains one; Quiet does not answer; Off has no workers. */
function observation(overrides: Partial<Observation> = {}): Observation {
  return observationOf({
    takenAt: 1_700_000_000_000 + 65_400,
    pools: { Regular: pool('Regular', { workerCount: 2 }), Quiet: pool('Quiet', { workerCount: 3 }), Off: pool('Off', { workerCount: 0 }) },
    poolNames: ['Regular', 'Quiet', 'Off'],
    children: [
      child('Regular', 20, [slot('20-1'), slot('20-2', { job: RUNNING_JOB, connectedServers: 2 })], {}, { breaker: 'closed', since: 0, lastReason: null, admitted: 2, retrying: 0, opened: 0 }),
      child('Quiet', 30, null),
      // Draining after a scale to zero and back: its slots stop, whatever they report.
      child('Regular', 10, [slot('10-1', { job: RUNNING_JOB })], { retiring: true, restarts: 1 }, { breaker: 'open', since: 0, lastReason: 'x', admitted: 0, retrying: 1, opened: 1 }),
    ],
    totals: new Map([
      ['Regular', totals(30, 1, 1)],
      ['Quiet', totals(0, 0)],
      ['Off', totals(0, 0)],
      ['Gone', totals(15, 2)],
    ]),
    reloads: { ok: 3, failed: 1 },
    childRestarts: 3,
    ...overrides,
  });
}

test('threadsText should print one line per answered slot in the original format, flag every draining slot, and escape control characters', () => {
  assert.equal(
    threadsText(observation()),
    '20-1\tRegular\t0\tWaiting for work\r\n' +
      '20-2\tRegular\t0\tjob_handle=H:vm:7 job_unique=a\\x09b\\x7f\r\n' +
      '10-1\tRegular\t1\tjob_handle=H:vm:7 job_unique=a\\x09b\\x7f\r\n',
  );
  assert.equal(threadsText(observation({ children: [] })), '');
});

test('countersText should print the daemon\'s counters, then every pool\'s totals, a removed pool\'s last', () => {
  const lines = countersText(observation()).split('\r\n');
  assert.deepEqual(lines.slice(0, 3), ['reloads: 3', 'reload_failures: 1', 'child_restarts: 3']);
  const pools = lines.filter((line) => line.includes('.jobs_completed:'));
  assert.deepEqual(pools, ['Regular.jobs_completed: 30', 'Quiet.jobs_completed: 0', 'Off.jobs_completed: 0', 'Gone.jobs_completed: 15']);
  assert.ok(lines.includes('Regular.breaker_opened: 1') && lines.includes('Regular.child_restarts: 1') && lines.includes('Gone.child_restarts: 2'));
  // Every counter of every pool, then breaker_opened and child_restarts.
  assert.equal(lines.filter((line) => line.startsWith('Gone.')).length, COUNTER_NAMES.length + 2);
  // A configured pool the totals do not know yet reads zero.
  assert.ok(countersText(observation({ totals: new Map() })).includes('Off.jobs_completed: 0\r\n'));
});

test('gaugesText should describe each configured or draining pool from its children', () => {
  const text = gaugesText(observation());
  assert.ok(text.endsWith('\r\n'));
  const gauges = new Map(text.split('\r\n').filter((line) => line !== '').map((line) => line.split(': ') as [string, string]));
  const expected: Record<string, string> = {
    pools: '3',
    children: '3',
    failed_pools: '0',
    uptime_seconds: '65',
    'Regular.worker_count': '2',
    'Regular.slots': '3',
    'Regular.busy_slots': '2',
    'Regular.stopping_slots': '1',
    'Regular.connected_servers': '2',
    'Regular.connections': '4',
    'Regular.child_pid': '20',
    'Regular.responding': '1',
    'Regular.child_responding': '1',
    'Regular.failed': '0',
    // The serving child's delivery, not the draining one's.
    'Regular.breaker': 'closed',
    'Regular.retrying': '0',
    'Regular.admitted_slots': '2',
    'Quiet.slots': '0',
    'Quiet.child_pid': '30',
    'Quiet.responding': '0',
    'Quiet.breaker': 'unknown',
    'Off.worker_count': '0',
    'Off.child_pid': '0',
    'Off.responding': '1',
  };
  for (const [name, value] of Object.entries(expected)) assert.equal(gauges.get(name), value, name);
  assert.equal(gauges.has('Gone.slots'), false, 'a removed pool has no gauges');
  const failed = gaugesText(observation({ children: [child('Quiet', 0, null, { pid: null, state: 'failed', statusError: 'no child (failed)' })] }));
  assert.match(failed, /^failed_pools: 1\r$/m);
  assert.match(failed, /^Quiet\.failed: 1\r$/m);
  assert.match(failed, /^Quiet\.responding: 1\r$/m);
  assert.match(failed, /^children: 0\r$/m);
  const silent = gaugesText(observation({ children: [child('Quiet', 30, [], { unresponsiveSince: 1 })] }));
  assert.match(silent, /^Quiet\.child_responding: 0\r$/m);
});

test('statusCommands should answer every command from a fresh snapshot', async () => {
  let taken = 0;
  const commands = statusCommands(() => {
    taken++;
    return Promise.resolve(observation({ reloads: { ok: taken, failed: 0 } }));
  });
  assert.match(await commands.counters(), /^reloads: 1\r$/m);
  assert.match(await commands.counters(), /^reloads: 2\r$/m);
  assert.equal(await commands.threads(), threadsText(observation()));
  assert.equal(await commands.gauges(), gaugesText(observation()));
  assert.equal(taken, 4);
});

test('gaugesText should print a line per paused function of a pool, and how many there are', () => {
  const breaker = (state: 'closed' | 'open' | 'half-open') => ({ breaker: state, since: 0, lastReason: 'HTTP 503', opened: 1 });
  const regular = pool('Regular', { workerCount: 2, jobsList: ['Resize', 'Sum', 'Report', 'Crop'] });
  const text = gaugesText(
    observation({
      pools: { ...observation().pools, Regular: regular },
      children: [
        child('Regular', 20, [slot('20-1')], {}, {
          breaker: 'closed',
          since: 0,
          lastReason: null,
          admitted: 2,
          retrying: 0,
          opened: 0,
          // Crop never failed: no breaker. Gone left jobs_list; the child still has its breaker.
          functions: { Sum: breaker('open'), Report: breaker('half-open'), Resize: breaker('closed'), Gone: breaker('open') },
        }),
      ],
    }),
  );
  const regularLines = text.split('\r\n').filter((line) => line.startsWith('Regular.'));
  // In jobs_list order, after the pool's own lines.
  assert.deepEqual(regularLines.slice(-3), ['Regular.paused_functions: 2', 'Regular.function.Sum.breaker: open', 'Regular.function.Report.breaker: half-open']);
  assert.ok(!text.includes('Resize') && !text.includes('Crop') && !text.includes('Gone'), 'closed, breaker-less and unconfigured functions have no line');
  // Pools with nothing paused (or no delivery status at all) say 0.
  assert.match(text, /^Quiet\.paused_functions: 0\r$/m);
  assert.match(gaugesText(observation()), /^Regular\.paused_functions: 0\r$/m);
});
