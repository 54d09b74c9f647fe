import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChildSettings } from '../../src/ipc/settings.js';
import { clusterForker } from '../../src/master/child-process.js';
import { PoolSupervisor, SupervisorState, supervisorTiming } from '../../src/master/supervisor.js';
import { PoolTotalsLedger } from '../../src/observe/pool-totals.js';
import type { SupervisorTiming } from '../../src/master/supervisor.js';
import { isAlive } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';
import { FAKE_CHILD, fastTiming, pool, server } from './support.js';
import { memoryLogger } from '../helpers/memory-logger.js';

function settings(name: string, workerCount = 2): ChildSettings {
  return { pool: pool(name, { workerCount }), servers: [server()], loopTimeoutMs: 500, logLevel: 'info' };
}

function supervise(t: import('node:test').TestContext, name: string, timing: Partial<SupervisorTiming> = {}) {
  const { logger, records } = memoryLogger();
  // The ledger the master reads: every child's figures and the pool's restarts.
  const totals = new PoolTotalsLedger();
  const supervisor = new PoolSupervisor({ settings: settings(name), fork: clusterForker(FAKE_CHILD), logger, timing: fastTiming(timing), totals });
  t.after(async () => {
    const pid = supervisor.pid;
    await Promise.race([supervisor.stop('hard', 0), new Promise((r) => setTimeout(r, 2000))]);
    if (pid !== null) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  });
  return { supervisor, records, totals: () => totals.totalsOf(name) };
}

test('supervisorTiming should derive shutdown grace from loop_timeout within bounds', () => {
  assert.equal(supervisorTiming(10_000).killGraceMs, 5000);
  assert.equal(supervisorTiming(1000).killGraceMs, 500);
  assert.equal(supervisorTiming(1).killGraceMs, 250);
  assert.equal(supervisorTiming(60_000).killGraceMs, 5000);
  assert.equal(supervisorTiming(10_000).restartFactor, 1.5);
});

test('PoolSupervisor.start should fork the child, complete the ready handshake and forward its logs', async (t) => {
  const { supervisor, records } = supervise(t, 'okstart');
  await supervisor.start();
  assert.equal(supervisor.state, SupervisorState.RUNNING);
  assert.ok(supervisor.pid !== null && isAlive(supervisor.pid));
  assert.ok(records.some((r) => r.event === 'fixture-ready' && r.pool === 'okstart'), 'forwarded record');
  assert.ok(records.some((r) => r.event === 'ready' && r.pool === 'okstart'));
  const status = await supervisor.status();
  assert.ok(status.ok);
  assert.equal(status.status.slots.length, 2);
});

test('PoolSupervisor should restart a child killed with SIGKILL and count the restart', async (t) => {
  const { supervisor, records, totals } = supervise(t, 'okkill');
  await supervisor.start();
  const first = supervisor.pid as number;
  await supervisor.status(); // counters: 10 completed
  process.kill(first, 'SIGKILL');
  const second = await waitFor(() => supervisor.state === SupervisorState.RUNNING && supervisor.pid !== first && supervisor.pid, { timeoutMs: 5000, message: 'a new child' });
  assert.notEqual(second, first);
  assert.equal(supervisor.restarts, 1);
  assert.equal(totals().restarts, 1);
  assert.ok(records.some((r) => r.event === 'child-exit' && r.signal === 'SIGKILL'));
  // Counters survive the restart: 10 from the dead child + 10 from the new one's first poll.
  await supervisor.status();
  assert.equal(totals().counters.jobs_completed, 20);
});

test('PoolSupervisor.metrics should survive a restart the way the counters do', async (t) => {
  const { supervisor, totals } = supervise(t, 'okmetrics');
  await supervisor.start();
  const first = supervisor.pid as number;
  await supervisor.status(); // 10 Sum jobs, HTTP 200
  assert.equal(totals().metrics.functions.Sum?.completed, 10);
  process.kill(first, 'SIGKILL');
  await waitFor(() => supervisor.state === SupervisorState.RUNNING && supervisor.pid !== first, { timeoutMs: 5000, message: 'a new child' });
  assert.equal(totals().metrics.functions.Sum?.completed, 10, 'the dead child is remembered');
  await supervisor.status();
  const metrics = totals().metrics;
  assert.equal(metrics.functions.Sum?.completed, 20);
  assert.equal(metrics.functions.Sum?.buckets[0], 20);
  assert.equal(metrics.http['200'], 20);
});

test('PoolSupervisor.stop should keep the final counters and metrics the child sends with stopped', async (t) => {
  const { supervisor, totals } = supervise(t, 'okfinal');
  await supervisor.start();
  await supervisor.status(); // 10
  await supervisor.stop('graceful', 1000);
  // 5 more jobs finished after the last poll: only the stopped reply knows them.
  assert.equal(totals().counters.jobs_completed, 15);
  assert.equal(totals().metrics.functions.Sum?.completed, 15);
});

test('PoolSupervisor should back off ×1.5 and mark a crash-looping pool failed, then retry on request', async (t) => {
  const { supervisor, records } = supervise(t, 'crashloop', { restartDelayMs: 20, restartDelayMaxMs: 40, maxUnstableRestarts: 3 });
  await supervisor.start();
  await waitFor(() => supervisor.state === SupervisorState.FAILED, { timeoutMs: 10_000, message: 'the pool to be marked failed' });
  const delays = records.filter((r) => r.event === 'restart-scheduled').map((r) => r.delayMs);
  assert.deepEqual(delays, [20, 30, 40]);
  assert.equal(supervisor.restarts, 3);
  assert.match(supervisor.failReason ?? '', /crash loop: 4 exits/);
  assert.ok(records.some((r) => r.event === 'pool-failed' && r.level >= 50));
  // Nothing respawns by itself.
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(supervisor.state, SupervisorState.FAILED);
  await supervisor.retry();
  await waitFor(() => supervisor.state === SupervisorState.FAILED, { timeoutMs: 10_000, message: 'the pool to fail again after retry' });
  assert.equal(records.filter((r) => r.event === 'retry').length, 1);
});

test('PoolSupervisor should treat init-failed as a failed start and restart', async (t) => {
  const { supervisor, records } = supervise(t, 'initfail', { maxUnstableRestarts: 1 });
  await supervisor.start();
  assert.notEqual(supervisor.state, SupervisorState.RUNNING);
  assert.ok(records.some((r) => r.event === 'init-failed' && /DS_CONFIG: fixture refuses/.test(String(r.problem))));
  await waitFor(() => supervisor.state === SupervisorState.FAILED, { timeoutMs: 5000, message: 'failed' });
});

test('PoolSupervisor should kill a child that never says hello within the ready timeout', async (t) => {
  const { supervisor, records } = supervise(t, 'silent', { readyTimeoutMs: 200, maxUnstableRestarts: 0 });
  const started = Date.now();
  await supervisor.start();
  assert.ok(Date.now() - started < 2000);
  await waitFor(() => supervisor.state === SupervisorState.FAILED, { timeoutMs: 5000, message: 'failed' });
  assert.ok(records.some((r) => r.event === 'init-failed' && /no hello within 200 ms/.test(String(r.problem))));
});

test('PoolSupervisor.status should report a child that does not answer instead of waiting', async (t) => {
  const { supervisor } = supervise(t, 'mutestatus', { statusTimeoutMs: 150 });
  await supervisor.start();
  const started = Date.now();
  const result = await supervisor.status();
  assert.equal(result.ok, false);
  assert.ok(Date.now() - started < 1000);
  assert.match(result.ok ? '' : result.reason, /no reply to status/);
});

test('PoolSupervisor.stop should end a cooperative child over IPC without signals', async (t) => {
  const { supervisor, records } = supervise(t, 'okstop');
  await supervisor.start();
  const pid = supervisor.pid as number;
  await supervisor.stop('graceful', 1000);
  assert.equal(supervisor.state, SupervisorState.STOPPED);
  assert.equal(isAlive(pid), false);
  assert.ok(records.some((r) => r.event === 'stopped' && r.code === 0));
  assert.ok(!records.some((r) => r.event === 'sigterm' || r.event === 'sigkill'));
  assert.ok(!records.some((r) => r.event === 'child-exit'), 'a requested stop is not a crash');
});

test('PoolSupervisor.stop should escalate to SIGTERM after the deadline plus grace', async (t) => {
  const { supervisor, records } = supervise(t, 'termable', { killGraceMs: 150 });
  await supervisor.start();
  const started = Date.now();
  await supervisor.stop('graceful', 100);
  const took = Date.now() - started;
  assert.ok(took >= 240 && took < 1500, `took ${took} ms`);
  assert.ok(records.some((r) => r.event === 'sigterm'));
  assert.ok(!records.some((r) => r.event === 'sigkill'));
});

test('PoolSupervisor.stop should escalate to SIGKILL when SIGTERM is ignored', async (t) => {
  const { supervisor, records } = supervise(t, 'stubborn', { killGraceMs: 100 });
  await supervisor.start();
  const started = Date.now();
  await supervisor.stop('hard', 0);
  const took = Date.now() - started;
  assert.ok(took >= 190 && took < 1500, `took ${took} ms`);
  assert.ok(records.some((r) => r.event === 'sigkill'));
  assert.equal(supervisor.state, SupervisorState.STOPPED);
});

test('PoolSupervisor.stop should let a hard stop cut a graceful one short', async (t) => {
  const { supervisor } = supervise(t, 'slowstop');
  await supervisor.start();
  const started = Date.now();
  const graceful = supervisor.stop('graceful', 10_000);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await supervisor.stop('hard', 0);
  await graceful;
  assert.ok(Date.now() - started < 1500);
});

test('PoolSupervisor.stop should resolve at once with no child, and cancel a pending restart', async (t) => {
  const { supervisor } = supervise(t, 'crashstop', { restartDelayMs: 5000, restartDelayMaxMs: 5000 });
  await supervisor.start();
  assert.equal(supervisor.state, SupervisorState.BACKOFF);
  await supervisor.stop('graceful', 1000);
  assert.equal(supervisor.state, SupervisorState.STOPPED);
  assert.equal(supervisor.pid, null);
});

test('PoolSupervisor.reconfigure should apply new settings in place', async (t) => {
  const { supervisor } = supervise(t, 'okrecfg');
  await supervisor.start();
  const pid = supervisor.pid;
  await supervisor.reconfigure(settings('okrecfg', 5));
  assert.equal(supervisor.pid, pid);
  const status = await supervisor.status();
  assert.equal(status.ok && status.status.slots.length, 5);
});

test('PoolSupervisor.reconfigure should replace a child that refuses, with the new settings', async (t) => {
  const { supervisor, records } = supervise(t, 'norecfg');
  await supervisor.start();
  const pid = supervisor.pid;
  await supervisor.reconfigure(settings('norecfg', 4));
  await waitFor(() => supervisor.state === SupervisorState.RUNNING && supervisor.pid !== pid, { timeoutMs: 5000, message: 'a replacement child' });
  assert.ok(records.some((r) => r.event === 'reconfigure-failed'));
  const status = await supervisor.status();
  assert.equal(status.ok && status.status.slots.length, 4);
  assert.equal(supervisor.restarts, 0, 'a replacement is not a crash restart');
});
