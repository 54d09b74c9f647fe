import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { checkFdBudget } from '../../src/config/fd-budget.js';
import { loadJobsConfig } from '../../src/config/jobs-config.js';
import type { DaemonOptions } from '../../src/config/types.js';
import { FdBudgetError } from '../../src/errors.js';
import { clusterForker } from '../../src/master/child-process.js';
import { Master, MasterState } from '../../src/master/master.js';
import type { SignalSource } from '../../src/master/signals.js';
import { SupervisorState } from '../../src/master/supervisor.js';
import { COUNTER_NAMES } from '../../src/ipc/counters.js';
import { isAlive } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';
import { FAKE_CHILD, daemonOptions, fastTiming } from './support.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { writeJobs } from '../helpers/jobs-file.js';
import type { LogRecord } from '../helpers/memory-logger.js';

type Pools = Record<string, { uri: string; count: number; jobs: string[] }>;

const SERVERS = ['127.0.0.1:4730'];

function options(file: string, statusPort: number | null = 0): DaemonOptions {
  return daemonOptions(file, { status_port: statusPort });
}

interface Harness {
  master: Master;
  records: LogRecord[];
  file: string;
  signals: EventEmitter;
  write(pools: Pools, servers?: string[]): void;
  ask(command: string): Promise<string>;
}

async function startMaster(
  t: import('node:test').TestContext,
  pools: Pools,
  extra: { budget?: (c: import('../../src/config/types.js').JobsConfig) => void; exporter?: boolean } = {},
): Promise<Harness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ds-master-'));
  const file = path.join(dir, 'jobs.json');
  const write = (next: Pools, servers = SERVERS): void => writeJobs(file, servers, next);
  write(pools);
  const opts = { ...options(file), exporter_addr: extra.exporter === true ? { host: '127.0.0.1', port: 0 } : null };
  const load = (f: string) => loadJobsConfig(f, { maxRunningTimeMs: 1000, requestFormat: 'json' });
  const { logger, records } = memoryLogger();
  const signals = new EventEmitter();
  const master = new Master({
    options: opts,
    config: load(file),
    logger,
    fork: clusterForker(FAKE_CHILD),
    loadConfig: load,
    checkBudget: extra.budget ?? ((c) => checkFdBudget(c)),
    signals: signals as unknown as SignalSource,
    timing: fastTiming(),
  });
  t.after(async () => {
    await master.stop('hard');
    rmSync(dir, { recursive: true, force: true });
  });
  await master.start();
  const ask = (command: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const address = master.statusAddress;
      if (address === null) return reject(new Error('no status port'));
      const socket = net.connect(address.port, address.host);
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (text += d));
      socket.on('error', reject);
      socket.on('close', () => resolve(text));
      socket.write(`${command}\n`);
    });
  return { master, records, file, signals, write, ask };
}

function pidOf(master: Master, pool: string): number | null {
  return master.supervisor(pool)?.pid ?? null;
}

/** `name: value` lines: the numeric ones (a `<pool>.breaker` state word is checked, then left to parseWords). */
function parseNameValues(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\r\n')) {
    if (line === '') continue;
    const match = /^([^:]+): (-?\d+|closed|open|half-open|unknown)$/.exec(line);
    assert.ok(match, `bad line ${JSON.stringify(line)}`);
    if (/^-?\d+$/.test(match[2] as string)) out.set(match[1] as string, Number(match[2]));
  }
  return out;
}

function parseWords(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const match = /^([^:]+): ([a-z-]+)$/.exec(line);
    if (match !== null) out.set(match[1] as string, match[2] as string);
  }
  return out;
}

/** Prometheus sample lines `name{labels} value`, summed by (name, pool) over the other labels, filtered by `keep`. */
function sumByPool(exposition: string, name: string, keep: (labels: string) => boolean = () => true): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of exposition.split('\n')) {
    const match = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (match === null || match[1] !== name || !keep(match[2] as string)) continue;
    const pool = /pool="([^"]*)"/.exec(match[2] as string)?.[1] as string;
    out.set(pool, (out.get(pool) ?? 0) + Number(match[3]));
  }
  return out;
}

const URI = 'http://127.0.0.1:1/job';

test('Master.start should fork one child per pool with workers and serve threads in the original format', async (t) => {
  const h = await startMaster(t, { okA: { uri: URI, count: 2, jobs: ['Sum'] }, okBbusy: { uri: URI, count: 1, jobs: ['Sum2'] }, okOff: { uri: URI, count: 0, jobs: ['Off'] } });
  assert.equal(h.master.state, MasterState.RUNNING);
  assert.equal(h.master.supervisor('okOff'), undefined);
  const a = pidOf(h.master, 'okA');
  const b = pidOf(h.master, 'okBbusy');
  assert.ok(a !== null && b !== null && a !== b);
  const threads = await h.ask('threads');
  assert.ok(threads.endsWith('\r\n'));
  const lines = threads.split('\r\n').filter((l) => l !== '');
  assert.deepEqual(
    lines.map((l) => l.split('\t')),
    [
      [`${a}-1`, 'okA', '0', 'Waiting for work'],
      [`${a}-2`, 'okA', '0', 'Waiting for work'],
      // The fixture's unique holds a tab: escaped so the line keeps its four fields.
      [`${b}-1`, 'okBbusy', '0', 'job_handle=H:fixture:1 job_unique=u\\x091'],
    ],
  );
  assert.ok(h.records.some((r) => r.event === 'started'));
});

test('Master counters and gauges should report per-pool and daemon-wide values', async (t) => {
  const h = await startMaster(t, { okA: { uri: URI, count: 3, jobs: ['Sum'] }, okOff: { uri: URI, count: 0, jobs: ['Off'] } });
  const gauges = parseNameValues(await h.ask('gauges'));
  assert.equal(gauges.get('pools'), 2);
  assert.equal(gauges.get('children'), 1);
  assert.equal(gauges.get('failed_pools'), 0);
  assert.equal(gauges.get('okA.worker_count'), 3);
  assert.equal(gauges.get('okA.slots'), 3);
  assert.equal(gauges.get('okA.busy_slots'), 0);
  assert.equal(gauges.get('okA.connected_servers'), 1);
  assert.equal(gauges.get('okA.connections'), 3);
  assert.equal(gauges.get('okA.child_pid'), pidOf(h.master, 'okA'));
  assert.equal(gauges.get('okA.responding'), 1);
  assert.equal(gauges.get('okOff.slots'), 0);
  assert.equal(gauges.get('okOff.child_pid'), 0);
  // The fixture reports 10 × (status polls it has answered) completed jobs: gauges polled once.
  const counters = parseNameValues(await h.ask('counters'));
  assert.equal(counters.get('okA.jobs_completed'), 20);
  assert.equal(counters.get('okA.jobs_failed'), 1);
  assert.equal(counters.get('okA.http_errors'), 2);
  assert.equal(counters.get('okOff.jobs_completed'), 0);
  assert.equal(counters.get('reloads'), 0);
  assert.equal(counters.get('child_restarts'), 0);
  // A crashed child's counts are kept and the restart is counted.
  process.kill(pidOf(h.master, 'okA') as number, 'SIGKILL');
  await waitFor(() => h.master.supervisor('okA')?.state === SupervisorState.RUNNING && h.master.supervisor('okA')?.restarts === 1, { timeoutMs: 5000, message: 'okA restarted' });
  const after = parseNameValues(await h.ask('counters'));
  assert.equal(after.get('okA.jobs_completed'), 30);
  assert.equal(after.get('child_restarts'), 1);
  assert.equal(after.get('okA.child_restarts'), 1);
});

test('Master should reload on a file change: add, remove, resize, and leave unchanged pools alone', async (t) => {
  const h = await startMaster(t, {
    okKeep: { uri: URI, count: 1, jobs: ['Keep'] },
    okGrow: { uri: URI, count: 1, jobs: ['Grow'] },
    okGone: { uri: URI, count: 1, jobs: ['Gone'] },
    okZero: { uri: URI, count: 1, jobs: ['Zero'] },
    okWake: { uri: URI, count: 0, jobs: ['Wake'] },
  });
  const keep = pidOf(h.master, 'okKeep');
  const grow = pidOf(h.master, 'okGrow');
  const gone = pidOf(h.master, 'okGone') as number;
  const zero = pidOf(h.master, 'okZero') as number;
  h.write({
    okKeep: { uri: URI, count: 1, jobs: ['Keep'] },
    okGrow: { uri: URI, count: 4, jobs: ['Grow'] },
    okZero: { uri: URI, count: 0, jobs: ['Zero'] },
    okWake: { uri: URI, count: 2, jobs: ['Wake'] },
    okNew: { uri: URI, count: 1, jobs: ['New'] },
  });
  const reloaded = await waitFor(() => h.records.find((r) => r.event === 'reloaded'), { timeoutMs: 5000, message: 'the reloaded log line' });
  assert.equal(reloaded.trigger, 'file');
  assert.deepEqual(reloaded.added, ['okNew']);
  assert.deepEqual(reloaded.removed, ['okGone']);
  assert.deepEqual(reloaded.resized, [
    { pool: 'okGrow', from: 1, to: 4 },
    { pool: 'okZero', from: 1, to: 0 },
    { pool: 'okWake', from: 0, to: 2 },
  ]);
  assert.equal(pidOf(h.master, 'okKeep'), keep, 'unchanged pool keeps its child');
  assert.equal(pidOf(h.master, 'okGrow'), grow, 'a resize happens in place');
  const growStatus = await h.master.supervisor('okGrow')?.status();
  assert.equal(growStatus?.ok && growStatus.status.slots.length, 4);
  assert.ok(pidOf(h.master, 'okNew') !== null);
  assert.ok(pidOf(h.master, 'okWake') !== null);
  await waitFor(() => !isAlive(gone) && !isAlive(zero), { timeoutMs: 5000, message: 'removed and zeroed children to exit' });
  const gauges = parseNameValues(await h.ask('gauges'));
  assert.equal(gauges.get('okZero.slots'), 0);
  // The fixture counts reconfigure messages as jobs_requeued: the unchanged pool got none at all.
  const perPool = parseNameValues(await h.ask('counters'));
  assert.equal(perPool.get('okKeep.jobs_requeued'), 0);
  assert.equal(perPool.get('okGrow.jobs_requeued'), 1);
  assert.equal(gauges.has('okGone.slots'), false);
  assert.equal(perPool.get('reloads'), 1);
});

test('Master should keep the running config when an edit is invalid, and log every problem', async (t) => {
  const h = await startMaster(t, { okA: { uri: URI, count: 1, jobs: ['Sum'] } });
  const pid = pidOf(h.master, 'okA');
  writeFileSync(h.file, '{"gearman_servers_list": ["127.0.0.1"], "pools_list": {"okA": {"worker_cuont": 2}}}');
  const failed = await waitFor(() => h.records.find((r) => r.event === 'reload-failed'), { timeoutMs: 5000, message: 'reload-failed' });
  assert.equal(failed.level, 50);
  const problems = failed.problems as string[];
  assert.ok(problems.some((p) => p.includes('pools_list.okA.worker_cuont')), problems.join('\n'));
  assert.ok(failed.msg.includes(h.file));
  assert.equal(pidOf(h.master, 'okA'), pid);
  assert.equal(h.master.config.pools.okA?.workerCount, 1);
  // Logged once, not every tick.
  await new Promise((resolve) => setTimeout(resolve, 350));
  assert.equal(h.records.filter((r) => r.event === 'reload-failed').length, 1);
  // Unreadable (deleted) file: same.
  rmSync(h.file);
  await waitFor(() => h.records.filter((r) => r.event === 'reload-failed').length === 2, { timeoutMs: 5000, message: 'second reload-failed' });
  const counters = parseNameValues(await h.ask('counters'));
  assert.equal(counters.get('reload_failures'), 2);
  assert.equal(counters.get('reloads'), 0);
  assert.equal(h.master.state, MasterState.RUNNING);
});

test('Master should refuse a reload over the fd budget and keep the old config', async (t) => {
  const h = await startMaster(t, { okA: { uri: URI, count: 1, jobs: ['Sum'] } }, {
    budget: (c) => {
      if ((c.pools.okA?.workerCount ?? 0) > 5) throw new FdBudgetError('pool "okA" needs 999 file descriptors but the open-file limit is 100');
    },
  });
  h.write({ okA: { uri: URI, count: 50, jobs: ['Sum'] } });
  const failed = await waitFor(() => h.records.find((r) => r.event === 'reload-failed'), { timeoutMs: 5000, message: 'reload-failed' });
  assert.match((failed.problems as string[])[0] ?? '', /needs 999 file descriptors but the open-file limit is 100/);
  assert.equal(h.master.config.pools.okA?.workerCount, 1);
});

test('Master should reload on SIGHUP, replace slots in place when the URI changes, and retry a failed pool', async (t) => {
  const h = await startMaster(t, { okA: { uri: URI, count: 1, jobs: ['Sum'] }, crashB: { uri: URI, count: 1, jobs: ['B'] } });
  await waitFor(() => h.master.supervisor('crashB')?.state === SupervisorState.FAILED, { timeoutMs: 10_000, message: 'crashB failed' });
  assert.equal(parseNameValues(await h.ask('gauges')).get('crashB.failed'), 1);
  const pid = pidOf(h.master, 'okA');
  // Same size and content length: written then signalled at once, so the HUP is what reloads it.
  h.write({ okA: { uri: 'http://127.0.0.1:2/job', count: 1, jobs: ['Sum'] }, crashB: { uri: URI, count: 1, jobs: ['B'] } });
  h.signals.emit('SIGHUP', 'SIGHUP');
  const reloaded = await waitFor(() => h.records.find((r) => r.event === 'reloaded'), { timeoutMs: 5000, message: 'reloaded' });
  assert.equal(reloaded.trigger, 'signal');
  assert.deepEqual(reloaded.replaced, ['okA']);
  assert.equal(pidOf(h.master, 'okA'), pid, 'slots are replaced by the child, not by a new child');
  assert.equal(h.master.supervisor('okA')?.settings.pool.jobProcessingUri, 'http://127.0.0.1:2/job');
  assert.ok(h.records.some((r) => r.event === 'retry' && r.pool === 'crashB'));
  // The watcher saw the version SIGHUP read: no second reload.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(h.records.filter((r) => r.event === 'reloaded').length, 1);
});

test('Master threads should leave out a child that does not answer, and say so', async (t) => {
  const h = await startMaster(t, { okA: { uri: URI, count: 1, jobs: ['Sum'] }, mutestatusB: { uri: URI, count: 2, jobs: ['B'] } });
  const threads = await h.ask('threads');
  assert.equal(threads.split('\r\n').filter((l) => l !== '').length, 1);
  assert.ok(h.records.some((r) => r.event === 'status-timeout' && r.pool === 'mutestatusB' && r.level === 40));
  const gauges = parseNameValues(await h.ask('gauges'));
  assert.equal(gauges.get('mutestatusB.responding'), 0);
  assert.equal(gauges.get('okA.responding'), 1);
});

test('Master.stop should drain every child on TERM, upgrade on a second TERM, and resolve 0', async (t) => {
  const h = await startMaster(t, { slowstopA: { uri: URI, count: 1, jobs: ['Sum'] }, okB: { uri: URI, count: 1, jobs: ['B'] } });
  const pids = [pidOf(h.master, 'slowstopA') as number, pidOf(h.master, 'okB') as number];
  const started = Date.now();
  h.signals.emit('SIGTERM', 'SIGTERM');
  assert.equal(h.master.state, MasterState.STOPPING);
  await waitFor(() => !isAlive(pids[1] as number), { timeoutMs: 3000, message: 'okB to stop' });
  assert.ok(isAlive(pids[0] as number), 'slowstop waits for its deadline (4 × loop_timeout)');
  h.signals.emit('SIGTERM', 'SIGTERM');
  assert.equal(await h.master.done, 0);
  assert.ok(Date.now() - started < 800, `took ${Date.now() - started} ms`);
  assert.ok(!isAlive(pids[0] as number));
  assert.equal(h.master.state, MasterState.STOPPED);
  const shutdowns = h.records.filter((r) => r.event === 'shutdown').map((r) => r.mode);
  assert.deepEqual(shutdowns, ['graceful', 'hard']);
  assert.equal(h.signals.listenerCount('SIGTERM'), 0, 'signal handlers removed');
});

test('Master.stop should let a graceful drain run out its deadline when nothing interrupts it', async (t) => {
  const h = await startMaster(t, { slowstopA: { uri: URI, count: 1, jobs: ['Sum'] } });
  const started = Date.now();
  assert.equal(await h.master.stop('graceful', 'test'), 0);
  const took = Date.now() - started;
  // loop_timeout 0.2 s: the fixture waits the whole 4 × 0.2 s drain deadline.
  assert.ok(took >= 750 && took < 2500, `took ${took} ms`);
});

test('Master counters and /metrics should agree for every pool and counter after a pool is removed and another scaled to 0 and back', async (t) => {
  // `Steady` pools report the same figures to every poll, so the two views can be compared one after the other.
  const h = await startMaster(
    t,
    {
      okSteadyKeep: { uri: URI, count: 1, jobs: ['Sum'] },
      okSteadyGone: { uri: URI, count: 2, jobs: ['Sum'] },
      okSteadyFlipOpen: { uri: URI, count: 1, jobs: ['Sum'] },
    },
    { exporter: true },
  );
  const address = h.master.exporterAddress;
  assert.ok(address !== null);
  await h.ask('counters');
  // A crash before the scale-down: its restart must survive the pool's trip to zero.
  process.kill(pidOf(h.master, 'okSteadyFlipOpen') as number, 'SIGKILL');
  await waitFor(() => h.master.supervisor('okSteadyFlipOpen')?.state === SupervisorState.RUNNING && h.master.supervisor('okSteadyFlipOpen')?.restarts === 1, { timeoutMs: 5000, message: 'okSteadyFlipOpen restarted' });
  await h.ask('counters');
  const gone = pidOf(h.master, 'okSteadyGone') as number;
  const flip = pidOf(h.master, 'okSteadyFlipOpen') as number;
  h.write({ okSteadyKeep: { uri: URI, count: 1, jobs: ['Sum'] }, okSteadyFlipOpen: { uri: URI, count: 0, jobs: ['Sum'] } });
  await waitFor(() => h.records.filter((r) => r.event === 'reloaded').length === 1, { timeoutMs: 5000, message: 'the first reload' });
  await waitFor(() => !isAlive(gone) && !isAlive(flip), { timeoutMs: 5000, message: 'the removed and zeroed children to exit' });
  h.write({ okSteadyKeep: { uri: URI, count: 1, jobs: ['Sum'] }, okSteadyFlipOpen: { uri: URI, count: 1, jobs: ['Sum'] } });
  await waitFor(() => h.records.filter((r) => r.event === 'reloaded').length === 2, { timeoutMs: 5000, message: 'the second reload' });
  await waitFor(() => h.master.supervisor('okSteadyFlipOpen')?.state === SupervisorState.RUNNING, { timeoutMs: 5000, message: 'okSteadyFlipOpen back' });

  const metrics = await (await fetch(`http://127.0.0.1:${address.port}/metrics`)).text();
  const counters = parseNameValues(await h.ask('counters'));
  const outcome = (name: string) => sumByPool(metrics, 'driveshaft_jobs_total', (labels) => labels.includes(`outcome="${name}"`));
  const fromMetrics: Record<string, Map<string, number>> = {
    jobs_completed: outcome('completed'),
    jobs_failed: outcome('failed'),
    jobs_timed_out: outcome('timed_out'),
    jobs_requeued: outcome('requeued'),
    http_errors: sumByPool(metrics, 'driveshaft_http_responses_total', (labels) => !labels.includes('code="200"')),
    jobs_retried: sumByPool(metrics, 'driveshaft_jobs_retried_total'),
    jobs_handed_back: sumByPool(metrics, 'driveshaft_jobs_handed_back_total'),
    jobs_dead_lettered: sumByPool(metrics, 'driveshaft_jobs_dead_lettered_total'),
    breaker_opened: sumByPool(metrics, 'driveshaft_breaker_opened_total'),
    child_restarts: sumByPool(metrics, 'driveshaft_child_restarts_total'),
  };
  assert.deepEqual(Object.keys(fromMetrics).slice(0, COUNTER_NAMES.length), [...COUNTER_NAMES], 'every counter is compared');
  const pools = ['okSteadyKeep', 'okSteadyGone', 'okSteadyFlipOpen'];
  assert.deepEqual([...fromMetrics.jobs_completed?.keys() ?? []].sort(), [...pools].sort());
  for (const pool of pools) {
    for (const [name, values] of Object.entries(fromMetrics)) {
      assert.equal(counters.get(`${pool}.${name}`), values.get(pool), `${pool}.${name}: counters ${counters.get(`${pool}.${name}`)}, /metrics ${values.get(pool)}`);
    }
  }
  // The figures themselves: the removed pool's child reported one poll plus its final 5 jobs; the
  // flipped pool had three children (the crashed one, the one scaled away, the one now running).
  assert.equal(counters.get('okSteadyGone.jobs_completed'), 15);
  assert.equal(counters.get('okSteadyGone.jobs_retried'), 3);
  assert.equal(counters.get('okSteadyFlipOpen.jobs_completed'), 10 + 15 + 10);
  assert.equal(counters.get('okSteadyFlipOpen.child_restarts'), 1);
  assert.equal(counters.get('okSteadyFlipOpen.breaker_opened'), 3);
  assert.equal(counters.get('child_restarts'), 1);
});

test('Master should show each pool\'s delivery state in gauges, counters, /status, /metrics and /readyz', async (t) => {
  const h = await startMaster(t, { okClosed: { uri: URI, count: 2, jobs: ['Sum'] }, okOpen: { uri: URI, count: 2, jobs: ['Sum'] }, okHalf: { uri: URI, count: 1, jobs: ['Sum'] }, okNone: { uri: URI, count: 0, jobs: ['Sum'] } }, { exporter: true });
  const address = h.master.exporterAddress;
  assert.ok(address !== null);
  const text = await h.ask('gauges');
  const words = parseWords(text);
  const gauges = parseNameValues(text);
  assert.equal(words.get('okClosed.breaker'), 'closed');
  assert.equal(words.get('okOpen.breaker'), 'open');
  assert.equal(words.get('okHalf.breaker'), 'half-open');
  assert.equal(words.get('okNone.breaker'), 'unknown');
  assert.equal(gauges.get('okClosed.admitted_slots'), 2);
  assert.equal(gauges.get('okOpen.admitted_slots'), 0);
  assert.equal(gauges.get('okOpen.retrying'), 1);
  assert.equal(gauges.get('okClosed.retrying'), 0);
  const counters = parseNameValues(await h.ask('counters'));
  // Polled twice now (gauges, counters).
  assert.equal(counters.get('okClosed.jobs_retried'), 6);
  assert.equal(counters.get('okClosed.jobs_handed_back'), 4);
  assert.equal(counters.get('okClosed.jobs_dead_lettered'), 2);
  assert.equal(counters.get('okOpen.breaker_opened'), 1);
  assert.equal(counters.get('okClosed.breaker_opened'), 0);

  const base = `http://127.0.0.1:${address.port}`;
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^driveshaft_breaker_state\{pool="okOpen",state="open"\} 1$/m);
  assert.match(metrics, /^driveshaft_breaker_state\{pool="okOpen",state="closed"\} 0$/m);
  assert.match(metrics, /^driveshaft_breaker_state\{pool="okHalf",state="half-open"\} 1$/m);
  assert.match(metrics, /^driveshaft_breaker_state\{pool="okClosed",state="closed"\} 1$/m);
  assert.doesNotMatch(metrics, /driveshaft_breaker_state\{pool="okNone"/);
  const status = (await (await fetch(`${base}/status`)).json()) as { pools: Array<{ name: string; delivery: { breaker: string; lastReason: string | null; admittedSlots: number; retrying: number; openedTotal: number } | null }> };
  const byName = new Map(status.pools.map((p) => [p.name, p.delivery]));
  assert.equal(byName.get('okOpen')?.breaker, 'open');
  assert.equal(byName.get('okOpen')?.lastReason, 'HTTP 503 from the endpoint');
  assert.equal(byName.get('okOpen')?.openedTotal, 1);
  assert.equal(byName.get('okClosed')?.admittedSlots, 2);
  assert.equal(byName.get('okNone'), null);
  const ready = await fetch(`${base}/readyz`);
  assert.equal(ready.status, 503);
  const body = await ready.text();
  assert.match(body, /^okOpen: circuit breaker open since \S+ \(HTTP 503 from the endpoint\)$/m);
  assert.match(body, /^okHalf: circuit breaker half-open since \S+ \(HTTP 503 from the endpoint\)$/m);
  assert.doesNotMatch(body, /okClosed|okNone/);
});

test('Master.observe should keep a removed pool in the totals with its child\'s final report, and the exporter should serve it', async (t) => {
  const h = await startMaster(t, { okStay: { uri: URI, count: 1, jobs: ['Sum'] }, okGone: { uri: URI, count: 2, jobs: ['Sum'] } }, { exporter: true });
  const address = h.master.exporterAddress;
  assert.ok(address !== null && address.port > 0);
  const first = await h.master.observe();
  assert.equal(first.totals.get('okGone')?.counters.jobs_completed, 10);
  assert.equal(first.totals.get('okGone')?.metrics.functions.Sum?.completed, 10);
  const gone = pidOf(h.master, 'okGone') as number;
  h.write({ okStay: { uri: URI, count: 1, jobs: ['Sum'] } });
  await waitFor(() => h.records.some((r) => r.event === 'reloaded'), { timeoutMs: 5000, message: 'the reload' });
  await waitFor(() => !isAlive(gone), { timeoutMs: 5000, message: 'the removed pool\'s child to exit' });
  const after = await h.master.observe();
  assert.deepEqual(after.poolNames, ['okStay']);
  // 10 at the last poll + 5 reported with `stopped` (the fixture's FINAL_EXTRA).
  assert.equal(after.totals.get('okGone')?.counters.jobs_completed, 15);
  assert.equal(after.totals.get('okGone')?.metrics.functions.Sum?.completed, 15);
  assert.deepEqual(after.reloads, { ok: 1, failed: 0 });
  const metrics = await (await fetch(`http://127.0.0.1:${address.port}/metrics`)).text();
  assert.match(metrics, /^driveshaft_jobs_total\{pool="okGone",function="Sum",outcome="completed"\} 15$/m);
  assert.match(metrics, /^driveshaft_reloads_total\{result="ok"\} 1$/m);
  const status = (await (await fetch(`http://127.0.0.1:${address.port}/status`)).json()) as { pools: Array<{ name: string }> };
  assert.deepEqual(status.pools.map((p) => p.name), ['okStay']);
});
