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
import type { StatusDocument } from '../../src/observe/observation.js';
import { isAlive } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';
import { FAKE_CHILD, daemonOptions, fastTiming } from './support.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { writeJobs, type PoolSpec } from '../helpers/jobs-file.js';
import type { LogRecord } from '../helpers/memory-logger.js';

type Pools = Record<string, PoolSpec>;

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

/** One status-port slot line: `<id>\t<pool>\t<stopping>\t<state>`. */
interface ThreadLine {
  id: string;
  pool: string;
  stopping: boolean;
  busy: boolean;
}

/** What every status view says at one moment. */
interface Views {
  threads: ThreadLine[];
  counters: Map<string, number>;
  gauges: Map<string, number>;
  words: Map<string, string>;
  status: StatusDocument;
  metrics: string;
}

function parseThreads(text: string): ThreadLine[] {
  return text
    .split('\r\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [id, pool, flag, state] = line.split('\t');
      assert.ok(flag === '0' || flag === '1', `bad threads line ${JSON.stringify(line)}`);
      return { id: id as string, pool: pool as string, stopping: flag === '1', busy: (state as string).startsWith('job_handle=') };
    });
}

/** Prometheus samples `name{labels} value` with the labels as an object. */
function samples(exposition: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const line of exposition.split('\n')) {
    const match = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const labels = Object.fromEntries([...(match[2] as string).matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]));
    out.push({ labels, value: Number(match[3]) });
  }
  return out;
}

/** The value of the one sample of `name` with all of `labels`, or undefined when there is none. */
function sampleValue(exposition: string, name: string, labels: Record<string, string>): number | undefined {
  const found = samples(exposition, name).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]?.value;
}

async function viewsOf(h: Harness, base: string): Promise<Views> {
  const gaugesText = await h.ask('gauges');
  return {
    threads: parseThreads(await h.ask('threads')),
    counters: parseNameValues(await h.ask('counters')),
    gauges: parseNameValues(gaugesText),
    words: parseWords(gaugesText),
    status: (await (await fetch(`${base}/status`)).json()) as StatusDocument,
    metrics: await (await fetch(`${base}/metrics`)).text(),
  };
}

/** Pool names of `name: value` lines ending in `.suffix`, in order. */
function poolsOf(lines: Map<string, number>, suffix: string): string[] {
  return [...lines.keys()].filter((key) => key.endsWith(`.${suffix}`)).map((key) => key.slice(0, -suffix.length - 1));
}

/**
 * Asserts that threads, counters, gauges, /status and /metrics say the same thing: the pools, each
 * slot and its state, every counter, restarts, reloads, the child and breaker state. Every figure a
 * view shows is compared with the same figure in every other view that shows it.
 */
function assertViewsAgree(step: string, v: Views): void {
  const { status, metrics, counters, gauges, words } = v;
  const at = (what: string) => `${step}: ${what}`;
  // Daemon-wide.
  assert.equal(counters.get('reloads'), status.reloads.ok, at('reloads'));
  assert.equal(sampleValue(metrics, 'driveshaft_reloads_total', { result: 'ok' }), status.reloads.ok, at('reloads in /metrics'));
  assert.equal(counters.get('reload_failures'), status.reloads.failed, at('reload_failures'));
  assert.equal(sampleValue(metrics, 'driveshaft_reloads_total', { result: 'failed' }), status.reloads.failed, at('failed reloads in /metrics'));
  assert.equal(counters.get('child_restarts'), status.childRestarts, at('child_restarts'));
  const restartSamples = samples(metrics, 'driveshaft_child_restarts_total');
  assert.equal(restartSamples.reduce((sum, s) => sum + s.value, 0), status.childRestarts, at('child restarts summed over /metrics'));
  assert.equal(gauges.get('pools'), status.pools.filter((p) => p.configured).length, at('pools'));
  assert.equal(gauges.get('children'), status.pools.flatMap((p) => p.children).filter((c) => c.pid !== null).length, at('children'));
  assert.equal(gauges.get('failed_pools'), status.pools.filter((p) => p.children.some((c) => !c.retiring && c.state === 'failed')).length, at('failed_pools'));

  // Which pools: gauges and /status show the configured and draining ones; counters and /metrics also the removed ones.
  const shown = status.pools.map((p) => p.name);
  assert.deepEqual(poolsOf(gauges, 'worker_count'), shown, at('pools in gauges and /status'));
  const counted = poolsOf(counters, 'jobs_completed');
  assert.deepEqual(restartSamples.map((s) => s.labels.pool), counted, at('pools in counters and /metrics'));
  assert.ok(shown.every((pool) => counted.includes(pool)), at('every shown pool is counted'));
  assert.ok(v.threads.every((line) => shown.includes(line.pool)), at('threads lists only shown pools'));

  for (const pool of counted) {
    const of = (what: string) => at(`${pool} ${what}`);
    // Slots and their states.
    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const threads = v.threads.filter((line) => line.pool === pool).map(({ id, stopping, busy }) => ({ id, stopping, busy })).sort(byId);
    const doc = status.pools.find((p) => p.name === pool);
    const slotCounts = {
      idle: threads.filter((s) => !s.stopping && !s.busy).length,
      busy: threads.filter((s) => !s.stopping && s.busy).length,
      stopping: threads.filter((s) => s.stopping).length,
    };
    const metricSlots = Object.fromEntries(Object.keys(slotCounts).map((state) => [state, sampleValue(metrics, 'driveshaft_slots', { pool, state })]));
    assert.deepEqual(metricSlots, slotCounts, of('slots by state in /metrics and threads'));
    // Counters, restarts, breaker openings in /metrics.
    const jobs = (outcome: string) => samples(metrics, 'driveshaft_jobs_total').filter((s) => s.labels.pool === pool && s.labels.outcome === outcome).reduce((sum, s) => sum + s.value, 0);
    const fromMetrics: Record<string, number | undefined> = {
      jobs_completed: jobs('completed'),
      jobs_failed: jobs('failed'),
      jobs_timed_out: jobs('timed_out'),
      jobs_requeued: jobs('requeued'),
      http_errors: sumByPool(metrics, 'driveshaft_http_responses_total', (labels) => !labels.includes('code="200"')).get(pool) ?? 0,
      jobs_retried: sampleValue(metrics, 'driveshaft_jobs_retried_total', { pool }),
      jobs_handed_back: sampleValue(metrics, 'driveshaft_jobs_handed_back_total', { pool }),
      jobs_dead_lettered: sampleValue(metrics, 'driveshaft_jobs_dead_lettered_total', { pool }),
      jobs_returned: sampleValue(metrics, 'driveshaft_jobs_returned_total', { pool }),
      breaker_opened: sampleValue(metrics, 'driveshaft_breaker_opened_total', { pool }),
      child_restarts: sampleValue(metrics, 'driveshaft_child_restarts_total', { pool }),
    };
    assert.deepEqual(Object.keys(fromMetrics).slice(0, COUNTER_NAMES.length), [...COUNTER_NAMES], 'every counter is compared');
    for (const [name, value] of Object.entries(fromMetrics)) assert.equal(counters.get(`${pool}.${name}`), value, of(`${name} in counters and /metrics`));
    if (doc === undefined) {
      assert.deepEqual(threads, [], of('a removed pool has no slots'));
      continue;
    }
    // /status and gauges.
    const statusSlots = doc.slots.map((s) => ({ id: s.id, stopping: s.stopping, busy: s.job !== null })).sort(byId);
    assert.deepEqual(statusSlots, threads, of('slots in /status and threads'));
    assert.deepEqual(doc.slotCounts, slotCounts, of('slot counts in /status and threads'));
    assert.equal(gauges.get(`${pool}.slots`), threads.length, of('slots in gauges'));
    assert.equal(gauges.get(`${pool}.busy_slots`), threads.filter((s) => s.busy).length, of('busy_slots'));
    assert.equal(gauges.get(`${pool}.stopping_slots`), slotCounts.stopping, of('stopping_slots'));
    assert.equal(gauges.get(`${pool}.worker_count`), doc.workerCount, of('worker_count'));
    const serving = doc.children.find((c) => !c.retiring);
    assert.equal(gauges.get(`${pool}.child_pid`), serving?.pid ?? 0, of('child_pid'));
    assert.equal(gauges.get(`${pool}.failed`), serving?.state === 'failed' ? 1 : 0, of('failed'));
    assert.equal(gauges.get(`${pool}.responding`), doc.children.every((c) => c.error === null) ? 1 : 0, of('responding'));
    assert.equal(gauges.get(`${pool}.child_responding`), doc.childResponding ? 1 : 0, of('child_responding'));
    assert.equal(sampleValue(metrics, 'driveshaft_child_responding', { pool }), doc.childResponding ? 1 : 0, of('child_responding in /metrics'));
    const breaker = doc.delivery?.breaker ?? 'unknown';
    assert.equal(words.get(`${pool}.breaker`), breaker, of('breaker'));
    const metricBreaker = samples(metrics, 'driveshaft_breaker_state').filter((s) => s.labels.pool === pool && s.value === 1).map((s) => s.labels.state);
    assert.deepEqual(metricBreaker, breaker === 'unknown' ? [] : [breaker], of('breaker state in /metrics'));
    assert.equal(gauges.get(`${pool}.retrying`), doc.delivery?.retrying ?? 0, of('retrying'));
    assert.equal(sampleValue(metrics, 'driveshaft_retrying_jobs', { pool }), doc.delivery?.retrying, of('retrying in /metrics'));
    assert.equal(gauges.get(`${pool}.admitted_slots`), doc.delivery?.admittedSlots ?? 0, of('admitted_slots'));
    assert.equal(sampleValue(metrics, 'driveshaft_admitted_slots', { pool }), doc.delivery?.admittedSlots, of('admitted slots in /metrics'));
    for (const name of COUNTER_NAMES) assert.equal(counters.get(`${pool}.${name}`), doc.counters[name], of(`${name} in counters and /status`));
    assert.equal(counters.get(`${pool}.child_restarts`), doc.childRestarts, of('child_restarts in /status'));
    if (doc.delivery !== null) assert.equal(counters.get(`${pool}.breaker_opened`), doc.delivery.openedTotal, of('breaker_opened in /status'));
  }
}

test('Master threads, counters, gauges, /status and /metrics should agree after jobs, a crash, a pool removed by reload (draining, then gone) and one scaled to 0 and back', async (t) => {
  // `Steady` pools report the same figures to every poll, so the views can be taken one after the other.
  // The removed pool drains for its max_running_time (`slowstop`), long enough to read every view meanwhile.
  const KEEP = 'okSteadyKeepbusy';
  const GONE = 'slowstopSteadyGone';
  const FLIP = 'okSteadyFlipOpen';
  const h = await startMaster(
    t,
    {
      [KEEP]: { uri: URI, count: 2, jobs: ['Sum'] },
      [GONE]: { uri: URI, count: 2, jobs: ['Sum'], extra: { max_running_time: 3 } },
      [FLIP]: { uri: URI, count: 1, jobs: ['Sum'] },
    },
    { exporter: true },
  );
  const address = h.master.exporterAddress;
  assert.ok(address !== null);
  const base = `http://127.0.0.1:${address.port}`;
  const poolIn = (status: StatusDocument, name: string) => status.pools.find((p) => p.name === name);
  // The exporter reuses a snapshot for up to a second: wait until it shows the step before reading every view.
  const shown = (message: string, probe: (status: StatusDocument) => boolean | undefined) =>
    waitFor(async () => probe((await (await fetch(`${base}/status`)).json()) as StatusDocument) === true, { timeoutMs: 8000, message });

  // Every pool serving; each child has "run" the jobs of one poll.
  await shown('every pool serving', (s) => s.pools.every((p) => p.slots.length === p.workerCount));
  let views = await viewsOf(h, base);
  assertViewsAgree('started', views);
  assert.equal(views.counters.get(`${KEEP}.jobs_completed`), 10);
  assert.deepEqual(views.threads.filter((line) => line.busy).map((line) => line.pool), [KEEP]);

  // A crash before the scale-down: its restart must survive the pool's trip to zero.
  process.kill(pidOf(h.master, FLIP) as number, 'SIGKILL');
  await waitFor(() => h.master.supervisor(FLIP)?.state === SupervisorState.RUNNING && h.master.supervisor(FLIP)?.restarts === 1, { timeoutMs: 5000, message: `${FLIP} restarted` });
  await shown('the restarted child', (s) => s.childRestarts === 1 && poolIn(s, FLIP)?.slots.length === 1);
  views = await viewsOf(h, base);
  assertViewsAgree('after a crash', views);
  assert.equal(views.counters.get(`${FLIP}.child_restarts`), 1);
  assert.equal(views.counters.get(`${FLIP}.jobs_completed`), 20, 'the dead child\'s 10 and the new one\'s 10');

  // Reload: GONE removed (its child drains), FLIP scaled to 0.
  const gone = pidOf(h.master, GONE) as number;
  const flip = pidOf(h.master, FLIP) as number;
  h.write({ [KEEP]: { uri: URI, count: 2, jobs: ['Sum'] }, [FLIP]: { uri: URI, count: 0, jobs: ['Sum'] } });
  await waitFor(() => h.records.filter((r) => r.event === 'reloaded').length === 1, { timeoutMs: 5000, message: 'the first reload' });
  await waitFor(() => !isAlive(flip), { timeoutMs: 5000, message: 'the zeroed child to exit' });
  await shown('GONE draining, FLIP without a child', (s) => poolIn(s, GONE)?.slots.every((slot) => slot.stopping) === true && poolIn(s, GONE)?.slots.length === 2 && poolIn(s, FLIP)?.children.length === 0);
  views = await viewsOf(h, base);
  assert.ok(isAlive(gone), 'the views were read while the removed pool drained');
  assertViewsAgree('while the removed pool drains', views);
  assert.deepEqual(views.threads.filter((line) => line.pool === GONE).map((line) => line.stopping), [true, true]);
  assert.equal(views.gauges.get(`${FLIP}.slots`), 0);

  // The removed pool's child stops, with its final totals.
  await waitFor(() => !isAlive(gone), { timeoutMs: 8000, message: 'the removed pool\'s child to exit' });
  await shown('GONE no longer shown', (s) => poolIn(s, GONE) === undefined);
  views = await viewsOf(h, base);
  assertViewsAgree('after the removed pool stopped', views);
  assert.equal(views.counters.get(`${GONE}.jobs_completed`), 15, 'one poll\'s 10 and the final report\'s 5 more');

  // FLIP back to one worker.
  h.write({ [KEEP]: { uri: URI, count: 2, jobs: ['Sum'] }, [FLIP]: { uri: URI, count: 1, jobs: ['Sum'] } });
  await waitFor(() => h.records.filter((r) => r.event === 'reloaded').length === 2, { timeoutMs: 5000, message: 'the second reload' });
  await waitFor(() => h.master.supervisor(FLIP)?.state === SupervisorState.RUNNING, { timeoutMs: 5000, message: `${FLIP} back` });
  await shown('FLIP serving again', (s) => s.reloads.ok === 2 && poolIn(s, FLIP)?.slots.length === 1);
  views = await viewsOf(h, base);
  assertViewsAgree('after the scale back', views);
  const { counters } = views;
  // The figures themselves: the removed pool's child reported one poll plus its final 5 jobs; the
  // flipped pool had three children (the crashed one, the one scaled away, the one now running).
  assert.equal(counters.get(`${GONE}.jobs_completed`), 15);
  assert.equal(counters.get(`${GONE}.jobs_retried`), 3);
  assert.equal(counters.get(`${FLIP}.jobs_completed`), 10 + 15 + 10);
  assert.equal(counters.get(`${FLIP}.child_restarts`), 1);
  assert.equal(counters.get(`${FLIP}.breaker_opened`), 3);
  assert.equal(counters.get('child_restarts'), 1);
  assert.equal(counters.get('reloads'), 2);
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
