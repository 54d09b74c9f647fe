/**
 * The child heartbeat watch: the interval's bounds, the supervisor's verdicts on a stand-in child that is
 * stopped (SIGSTOP) or never beats, and what the exporter's views make of an unresponsive child.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { zeroCounters } from '../../src/ipc/counters.js';
import { heartbeatIntervalMs } from '../../src/ipc/settings.js';
import type { ChildSettings } from '../../src/ipc/settings.js';
import { clusterForker } from '../../src/master/child-process.js';
import { metricFamilies, readiness, statusDocument } from '../../src/observe/observation.js';
import type { ChildObservation, Observation } from '../../src/observe/observation.js';
import { PoolSupervisor, SupervisorState, supervisorTiming } from '../../src/master/supervisor.js';
import type { SupervisorTiming } from '../../src/master/supervisor.js';
import { isAlive } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';
import { FAKE_CHILD, fastTiming, observationOf, pool, server } from './support.js';
import { memoryLogger } from '../helpers/memory-logger.js';

test('heartbeatIntervalMs should be a quarter of loop_timeout and of the unresponsive limit, within 250 ms-2.5 s', () => {
  assert.equal(heartbeatIntervalMs(10_000), 2500);
  assert.equal(heartbeatIntervalMs(60_000), 2500);
  assert.equal(heartbeatIntervalMs(4000), 1000);
  assert.equal(heartbeatIntervalMs(500), 250);
  assert.equal(heartbeatIntervalMs(10_000, 2000), 500);
  assert.equal(heartbeatIntervalMs(10_000, 1000), 250);
  const timing = supervisorTiming(10_000);
  assert.deepEqual([timing.heartbeatIntervalMs, timing.unresponsiveAfterMs, timing.killAfterMs], [2500, 10_000, 60_000]);
  const given = supervisorTiming(500, { unresponsiveAfterMs: 1000, killAfterMs: 0 });
  assert.deepEqual([given.heartbeatIntervalMs, given.unresponsiveAfterMs, given.killAfterMs], [250, 1000, 0]);
});

function supervise(t: TestContext, name: string, timing: Partial<SupervisorTiming>) {
  const { logger, records } = memoryLogger();
  const full = fastTiming(timing);
  const settings: ChildSettings = { pool: pool(name), servers: [server()], loopTimeoutMs: 500, logLevel: 'info', heartbeatIntervalMs: full.heartbeatIntervalMs };
  const supervisor = new PoolSupervisor({ settings, fork: clusterForker(FAKE_CHILD), logger, timing: full });
  t.after(async () => {
    const pid = supervisor.pid;
    if (pid !== null && isAlive(pid)) process.kill(pid, 'SIGCONT');
    await Promise.race([supervisor.stop('hard', 0), new Promise((r) => setTimeout(r, 2000))]);
    if (pid !== null && isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  return { supervisor, records };
}

test('PoolSupervisor should report a stopped child unresponsive and responding again once continued', async (t) => {
  const { supervisor, records } = supervise(t, 'okbeat', { heartbeatIntervalMs: 50, unresponsiveAfterMs: 300, killAfterMs: 0 });
  await supervisor.start();
  const pid = supervisor.pid as number;
  // Beating: never reported, however long it runs.
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(supervisor.unresponsiveSince, null);
  assert.equal(records.some((r) => r.event === 'child-unresponsive'), false);

  const stoppedAt = Date.now();
  process.kill(pid, 'SIGSTOP');
  const since = await waitFor(() => supervisor.unresponsiveSince ?? undefined, { timeoutMs: 3000, message: 'the child reported unresponsive' });
  assert.ok(since <= stoppedAt + 50 && since >= stoppedAt - 200, `unresponsive since its last beat (${since - stoppedAt} ms from the stop)`);
  const warning = records.find((r) => r.event === 'child-unresponsive');
  assert.equal(warning?.childPid, pid);
  assert.ok((warning?.silentMs as number) >= 300);

  process.kill(pid, 'SIGCONT');
  await waitFor(() => supervisor.unresponsiveSince === null, { timeoutMs: 3000, message: 'the child responding again' });
  assert.ok(records.some((r) => r.event === 'child-responding' && r.childPid === pid));
  // --child_kill_after 0: never killed.
  assert.equal(supervisor.pid, pid);
  assert.equal(supervisor.restarts, 0);
});

test('PoolSupervisor should SIGKILL a child silent for killAfterMs and restart it through the ordinary backoff', async (t) => {
  const { supervisor, records } = supervise(t, 'nobeat', { heartbeatIntervalMs: 50, unresponsiveAfterMs: 200, killAfterMs: 500 });
  await supervisor.start();
  const first = supervisor.pid as number;
  const second = await waitFor(() => supervisor.state === SupervisorState.RUNNING && supervisor.pid !== first && supervisor.pid, { timeoutMs: 5000, message: 'a replacement child' });
  assert.notEqual(second, first);
  assert.equal(isAlive(first), false);
  const events = records.filter((r) => r.childPid === first).map((r) => r.event);
  assert.deepEqual(
    events.filter((e) => ['child-unresponsive', 'child-unresponsive-kill', 'child-exit'].includes(e as string)),
    ['child-unresponsive', 'child-unresponsive-kill', 'child-exit'],
  );
  assert.equal(records.find((r) => r.event === 'child-exit' && r.childPid === first)?.signal, 'SIGKILL');
  assert.ok(records.some((r) => r.event === 'restart-scheduled'));
  assert.ok(supervisor.restarts >= 1);
});

function observation(children: ChildObservation[]): Observation {
  return observationOf({ pools: { Regular: pool('Regular'), Other: pool('Other') }, poolNames: ['Regular', 'Other'], children });
}

function child(name: string, unresponsiveSince: number | null): ChildObservation {
  const slots = [{ id: '100-1', stopping: false, job: null, connectedServers: 1 }];
  // A stopped child cannot answer the status poll either.
  const status = unresponsiveSince === null ? { pool: name, pid: 100, slots, counters: zeroCounters() } : null;
  return { pool: name, state: 'running', pid: 100, restarts: 0, failReason: null, unresponsiveSince, retiring: false, status, statusError: status === null ? 'no reply' : null };
}

test('the exporter views should show an unresponsive child in the metric, /status and /readyz', () => {
  const seen = observation([child('Regular', 1_700_000_004_000), child('Other', null)]);
  const family = metricFamilies(seen, []).find((f) => f.name === 'driveshaft_child_responding');
  assert.equal(family?.type, 'gauge');
  assert.deepEqual(family?.samples, [
    { labels: { pool: 'Regular' }, value: 0 },
    { labels: { pool: 'Other' }, value: 1 },
  ]);
  const document = statusDocument(seen, []);
  const regular = document.pools.find((p) => p.name === 'Regular');
  assert.equal(regular?.childResponding, false);
  assert.equal(regular?.children[0]?.responding, false);
  assert.equal(regular?.children[0]?.unresponsiveSince, new Date(1_700_000_004_000).toISOString());
  assert.equal(document.pools.find((p) => p.name === 'Other')?.childResponding, true);
  assert.deepEqual(readiness(seen).problems, [{ pool: 'Regular', reason: 'child 100 unresponsive: no heartbeat for 6000 ms' }]);
  assert.equal(readiness(observation([child('Regular', null), child('Other', null)])).ready, true);
});
