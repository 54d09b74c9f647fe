import assert from 'node:assert/strict';
import { test } from 'node:test';
import { zeroCounters } from '../../src/ipc/counters.js';
import { emptyMetrics } from '../../src/ipc/metrics.js';
import { deliveryFigures, PoolTotalsLedger } from '../../src/observe/pool-totals.js';

const completed = (n: number) => ({ ...zeroCounters(), jobs_completed: n });
const http200 = (n: number) => ({ ...emptyMetrics(), http: { '200': n } });

test('PoolTotalsLedger should replace a child\'s figures with each report and keep them after its exit', () => {
  const ledger = new PoolTotalsLedger();
  const first = ledger.openChild('A');
  first.report({ counters: completed(10), metrics: http200(10), breakerOpened: 1 });
  first.report({ counters: completed(12) });
  assert.equal(ledger.totalsOf('A').counters.jobs_completed, 12, 'a report replaces, it does not add');
  assert.equal(ledger.totalsOf('A').metrics.http['200'], 10, 'a field left out keeps its last value');
  assert.equal(ledger.totalsOf('A').breakerOpened, 1);
  first.settle();
  first.report({ counters: completed(99) });
  first.settle();
  assert.equal(ledger.totalsOf('A').counters.jobs_completed, 12, 'a report after the exit changes nothing, nor a second exit');
  ledger.restarted('A');
  const second = ledger.openChild('A');
  second.report({ counters: completed(3), breakerOpened: 1 });
  assert.deepEqual(
    { ...ledger.totalsOf('A'), counters: ledger.totalsOf('A').counters.jobs_completed },
    { counters: 15, metrics: http200(10), restarts: 1, breakerOpened: 2, functionBreakerOpened: new Map() },
  );
});

test('PoolTotalsLedger should sum a draining child and its successor, and keep a removed pool after the given ones', () => {
  const ledger = new PoolTotalsLedger();
  const gone = ledger.openChild('Gone');
  gone.report({ counters: completed(5) });
  ledger.restarted('Gone');
  const draining = ledger.openChild('Flip');
  const successor = ledger.openChild('Flip');
  draining.report({ counters: completed(7) });
  successor.report({ counters: completed(1) });
  assert.equal(ledger.totalsOf('Flip').counters.jobs_completed, 8);
  draining.settle();
  gone.settle();
  assert.equal(ledger.totalsOf('Flip').counters.jobs_completed, 8, 'a draining child\'s exit moves nothing out');
  const totals = ledger.totals(['Flip', 'Off']);
  assert.deepEqual([...totals.keys()], ['Flip', 'Off', 'Gone']);
  assert.equal(totals.get('Off')?.counters.jobs_completed, 0);
  assert.equal(totals.get('Gone')?.counters.jobs_completed, 5);
  assert.equal(ledger.restarts, 1);
  assert.equal(ledger.totalsOf('Never').restarts, 0);
});

test('PoolTotalsLedger should keep each function\'s breaker openings across a child\'s restart', () => {
  const fn = (breaker: 'open' | 'closed', opened: number) => ({ breaker, since: 0, lastReason: null, opened });
  const delivery = (functions: Record<string, ReturnType<typeof fn>>, opened = 0) => ({ breaker: 'closed' as const, since: 0, lastReason: null, admitted: 1, retrying: 0, opened, functions });
  assert.deepEqual(deliveryFigures(null), {}, 'a child without a delivery status keeps what it last reported');
  assert.deepEqual(deliveryFigures(delivery({ A: fn('open', 2), B: fn('closed', 0) }, 1)), { breakerOpened: 1, functionBreakerOpened: new Map([['A', 2]]) });

  const ledger = new PoolTotalsLedger();
  const first = ledger.openChild('P');
  first.report(deliveryFigures(delivery({ A: fn('open', 1) })));
  first.report(deliveryFigures(delivery({ A: fn('closed', 3), B: fn('open', 1) })));
  first.report({ counters: completed(1) });
  assert.deepEqual(ledger.totalsOf('P').functionBreakerOpened, new Map([['A', 3], ['B', 1]]), 'replaced by each report, kept by one without it');
  first.settle();
  ledger.restarted('P');
  // The new child counts from zero; the pool's totals go on from the old one's.
  const second = ledger.openChild('P');
  second.report(deliveryFigures(delivery({ A: fn('open', 1) })));
  assert.deepEqual(ledger.totalsOf('P').functionBreakerOpened, new Map([['A', 4], ['B', 1]]));
});
