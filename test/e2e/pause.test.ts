/**
 * Issue #20, pause and resume at runtime, end to end: the real daemon, a real gearmand and a real
 * endpoint, commanded through the status port and the `driveshaft pause|resume|drain` subcommands.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { freePort } from '../helpers/free-port.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand } from '../helpers/gearmand.js';
import type { Gearmand } from '../helpers/gearmand.js';
import { parseJsonJob, startEndpoint } from '../helpers/http-endpoint.js';
import type { Endpoint } from '../helpers/http-endpoint.js';
import { writeJobs } from '../helpers/jobs-file.js';
import type { PoolSpec } from '../helpers/jobs-file.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { BIN, nameValues, parseThreads, startServing, statusExchange } from './daemon.js';
import type { Daemon } from './daemon.js';

const LOOP_SECONDS = 1;

interface Rig {
  gearmand: Gearmand;
  endpoint: Endpoint;
  daemon: Daemon;
  file: string;
  statusPort: number;
  exporter: string;
  client: GearmanClient;
  /** Answers every request whose workload starts with `hold`, now and from now on. */
  release(): void;
  /** Function names of the requests the endpoint got, in arrival order. */
  functions(): string[];
}

function pools(endpoint: Endpoint, count = 2, jobs = ['Alpha', 'Beta']): Record<string, PoolSpec> {
  return { Flow: { uri: endpoint.url, count, jobs }, Parked: { uri: endpoint.url, count: 0, jobs: ['Gamma'] } };
}

async function rig(t: TestContext): Promise<Rig> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const gate = opened();
  const endpoint = await startEndpoint(async (req) => {
    const job = parseJsonJob(req.body);
    if (job.workload.startsWith('hold')) await gate.promise;
    return { body: { gearman_ret: 0, response_string: `done ${job.workload}` } };
  });
  t.after(() => {
    gate.resolve();
    return endpoint.close();
  });
  const file = path.join(tempDir(t), 'jobs.json');
  writeJobs(file, [gearmand.label], pools(endpoint));
  const statusPort = await freePort();
  const exporterPort = await freePort();
  const daemon = await startServing(t, ['--jobsconfig', file, '--status_port', String(statusPort), '--exporter_addr', `127.0.0.1:${exporterPort}`, '--loop_timeout', String(LOOP_SECONDS)]);
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  await waitFor(async () => (await workersFor(gearmand, 'Alpha')) === 2 || undefined, { timeoutMs: 10_000, message: 'two Alpha workers' });
  return {
    gearmand,
    endpoint,
    daemon,
    file,
    statusPort,
    exporter: `http://127.0.0.1:${exporterPort}`,
    client,
    release: () => gate.resolve(),
    functions: () => endpoint.requests.map((req) => parseJsonJob(req.body).function_name),
  };
}

/** A promise and the function that resolves it. */
function opened(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

async function workersFor(gearmand: Gearmand, fn: string): Promise<number> {
  return (await gearmand.workers()).filter((w) => w.functions.includes(fn)).length;
}

/** `driveshaft <args>` run to its end: exit status and output. */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function gauges(r: Rig): Promise<Map<string, number>> {
  return nameValues(await statusExchange(r.statusPort, 'gauges\n'));
}

async function counter(r: Rig, name: string): Promise<number> {
  return nameValues(await statusExchange(r.statusPort, 'counters\n')).get(name) ?? -1;
}

async function queued(r: Rig, fn: string): Promise<{ total: number; running: number }> {
  const status = (await r.gearmand.status()).find((f) => f.function === fn);
  return { total: status?.total ?? 0, running: status?.running ?? 0 };
}

async function submit(r: Rig, fn: string, workloads: string[]): Promise<void> {
  await Promise.all(workloads.map((w) => r.client.submit(fn, w, { background: true })));
}

/** The scenario's window for a negative check: a loop_timeout's liveness probe (which GRABs when a slot may) and then some. */
function quietWindow(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 2 * LOOP_SECONDS * 1000 + 500));
}

test('pause should stop the pool grabbing at once while running jobs finish; every view says so; resume runs what waited', async (t) => {
  const r = await rig(t);
  const ctl = ['--pool', 'Flow', '--status_port', String(r.statusPort)];
  await submit(r, 'Alpha', ['hold-1', 'hold-2']);
  await waitFor(() => r.endpoint.requests.length === 2 || undefined, { timeoutMs: 10_000, message: 'both held jobs at the endpoint' });

  const paused = await cli(['pause', ...ctl]);
  assert.equal(paused.code, 0, paused.stderr);
  assert.match(paused.stdout, /^OK pool "Flow" paused: 2 jobs running finish, new jobs wait in gearmand\n$/);
  await submit(r, 'Alpha', ['after-1', 'after-2', 'after-3', 'after-4']);
  r.release();
  await waitFor(async () => (await counter(r, 'Flow.jobs_completed')) === 2 || undefined, { timeoutMs: 10_000, message: 'the two running jobs to complete' });
  await quietWindow();
  assert.equal(r.endpoint.requests.length, 2, 'no job was posted after the pause answered');
  assert.deepEqual(await queued(r, 'Alpha'), { total: 4, running: 0 }, 'the new jobs wait in gearmand');

  // Every view.
  const threads = parseThreads(await statusExchange(r.statusPort, 'threads\n')).filter((line) => line.pool === 'Flow');
  assert.deepEqual(threads.map((line) => line.state), ['Paused', 'Paused']);
  const g = await gauges(r);
  assert.equal(g.get('Flow.paused'), 1);
  assert.equal(g.get('Parked.paused'), 0);
  const metrics = await (await fetch(`${r.exporter}/metrics`)).text();
  assert.match(metrics, /^driveshaft_pool_paused\{pool="Flow"\} 1$/m);
  assert.match(metrics, /^driveshaft_pool_paused\{pool="Parked"\} 0$/m);
  assert.match(metrics, /^driveshaft_function_paused\{pool="Flow",function="Alpha"\} 0$/m);
  const status = (await (await fetch(`${r.exporter}/status`)).json()) as { pools: Array<{ name: string; flow: { paused: boolean; pausedBy: string }; children: Array<{ flow: { paused: boolean } | null }> }> };
  const flow = status.pools.find((p) => p.name === 'Flow');
  assert.equal(flow?.flow.paused, true);
  assert.match(flow?.flow.pausedBy ?? '', /^127\.0\.0\.1:\d+$/);
  assert.equal(flow?.children[0]?.flow?.paused, true, 'the child reports the pause it applies');
  const ready = await fetch(`${r.exporter}/readyz`);
  assert.equal(ready.status, 200, 'a deliberate pause is not a fault');
  assert.match(await ready.text(), /^ready\nFlow: paused since \S+ by 127\.0\.0\.1:\d+\n$/);
  const pauseLog = await r.daemon.waitForLog((rec) => rec.event === 'pause' && rec.pool === 'Flow', 'the pause log line');
  assert.match(pauseLog.msg, /^pool "Flow" paused by 127\.0\.0\.1:\d+ \(status port\)$/);
  assert.equal(pauseLog.level, 30);

  const resumed = await cli(['resume', ...ctl]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(resumed.stdout, 'OK pool "Flow" resumed\n');
  await waitFor(async () => (await counter(r, 'Flow.jobs_completed')) === 6 || undefined, { timeoutMs: 10_000, message: 'the jobs that waited to complete' });
  assert.equal(await counter(r, 'Flow.jobs_failed'), 0);
  assert.equal((await gauges(r)).get('Flow.paused'), 0);
  assert.ok(parseThreads(await statusExchange(r.statusPort, 'threads\n')).every((line) => line.state === 'Waiting for work'));
  await r.daemon.waitForLog((rec) => rec.event === 'resume' && rec.pool === 'Flow' && /^pool "Flow" resumed after \d+ s by 127\.0\.0\.1:\d+/.test(rec.msg), 'the resume log line');
});

test('pause of a function should leave it unregistered, its jobs waiting in gearmand, while the other function runs', async (t) => {
  const r = await rig(t);
  const reply = await statusExchange(r.statusPort, 'pause Flow Alpha\n');
  assert.equal(reply, `OK function "Alpha" of pool "Flow" paused: 0 jobs of it running finish, its jobs wait in gearmand while the pool's other functions run\r\n`);
  await waitFor(async () => ((await workersFor(r.gearmand, 'Alpha')) === 0 && (await workersFor(r.gearmand, 'Beta')) === 2) || undefined, {
    timeoutMs: 5000,
    message: 'gearmand to list the slots for Beta only',
  });
  await submit(r, 'Alpha', ['a-1', 'a-2', 'a-3']);
  await submit(r, 'Beta', ['b-1', 'b-2', 'b-3']);
  // The Beta jobs, queued with them, prove the slots were free and grabbing all along.
  await waitFor(async () => (await counter(r, 'Flow.jobs_completed')) === 3 || undefined, { timeoutMs: 10_000, message: 'the Beta jobs to complete' });
  assert.deepEqual(r.functions(), ['Beta', 'Beta', 'Beta']);
  assert.deepEqual(await queued(r, 'Alpha'), { total: 3, running: 0 });
  const g = await statusExchange(r.statusPort, 'gauges\n');
  assert.match(g, /^Flow\.function\.Alpha\.paused: 1\r$/m);
  assert.match(g, /^Flow\.paused: 0\r$/m);
  assert.doesNotMatch(g, /Beta\.paused/);
  const metrics = await (await fetch(`${r.exporter}/metrics`)).text();
  assert.match(metrics, /^driveshaft_function_paused\{pool="Flow",function="Alpha"\} 1$/m);
  assert.match(metrics, /^driveshaft_function_paused\{pool="Flow",function="Beta"\} 0$/m);
  assert.ok(parseThreads(await statusExchange(r.statusPort, 'threads\n')).every((line) => line.state === 'Waiting for work'), 'a function pause leaves the slots waiting for work');

  const resumed = await cli(['resume', '--pool', 'Flow', '--function', 'Alpha', '--status_port', String(r.statusPort)]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(resumed.stdout, 'OK function "Alpha" of pool "Flow" resumed\n');
  await waitFor(async () => (await counter(r, 'Flow.jobs_completed')) === 6 || undefined, { timeoutMs: 10_000, message: 'the Alpha jobs to complete once resumed' });
  assert.equal(await counter(r, 'Flow.jobs_failed'), 0);
});

test('the commands should refuse an unknown pool or function, a pool not running and bad words; the subcommand should exit 1 or 2 for them', async (t) => {
  const r = await rig(t);
  const ask = (line: string) => statusExchange(r.statusPort, `${line}\n`);
  assert.equal(await ask('pause Nope'), 'Error: unknown pool "Nope" (pools: "Flow", "Parked")\r\n');
  assert.equal(await ask('resume Flow Nope'), 'Error: pool "Flow" has no function "Nope" (its functions: "Alpha", "Beta")\r\n');
  assert.equal(await ask('drain Parked'), 'Error: pool "Parked" is not running (worker_count 0)\r\n');
  assert.equal(await ask('pause'), 'Error: usage: pause <pool> [<function>]\r\n');
  assert.equal(await ask('pause Flow Alpha extra'), 'Error: usage: pause <pool> [<function>]\r\n');
  assert.equal(await ask('pause "Flow'), 'Error: unterminated quoted word at character 7\r\n');
  assert.equal(await ask('pause "Flow"'), 'OK pool "Flow" paused: 0 jobs running finish, new jobs wait in gearmand\r\n');
  assert.match(await ask('pause Flow'), /^OK pool "Flow" was already paused \(since \S+ by 127\.0\.0\.1:\d+\): 0 jobs running finish/);
  assert.equal(await ask('threads extra'), 'Error: unrecognized command\r\n');

  const port = ['--status_port', String(r.statusPort)];
  const unknown = await cli(['pause', '--pool', 'Nope', ...port]);
  assert.deepEqual([unknown.code, unknown.stdout], [1, '']);
  assert.equal(unknown.stderr, 'driveshaft pause: Error: unknown pool "Nope" (pools: "Flow", "Parked")\n');
  const parked = await cli(['resume', '--pool', 'Parked', ...port]);
  assert.equal(parked.code, 1);
  assert.match(parked.stderr, /is not running \(worker_count 0\)/);
  const notPaused = await cli(['resume', '--pool', 'Flow', '--function', 'Beta', ...port]);
  assert.deepEqual([notPaused.code, notPaused.stdout], [0, 'OK function "Beta" of pool "Flow" was not paused; the pool itself is still paused\n']);
  const noPool = await cli(['pause', ...port]);
  assert.deepEqual([noPool.code, noPool.stderr], [2, 'driveshaft pause: --pool: is required (the pool to pause)\n']);
  const badPort = await cli(['pause', '--pool', 'Flow', '--status_port', '0']);
  assert.equal(badPort.code, 2);
  assert.match(badPort.stderr, /--status_port: expected a port number from 1 to 65535, got "0"/);
  const closed = await cli(['pause', '--pool', 'Flow', '--status_port', String(await freePort())]);
  assert.equal(closed.code, 2);
  assert.match(closed.stderr, /^driveshaft pause: no answer from the status port 127\.0\.0\.1:\d+: connection refused/);
  const fromEnv = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(process.execPath, [BIN, 'resume', '--pool', 'Flow'], { env: { ...process.env, DRIVESHAFT_STATUS_PORT: String(r.statusPort) } }, (error, stdout) => resolve({ code: error === null ? 0 : Number(error.code), stdout }));
  });
  assert.deepEqual(fromEnv, { code: 0, stdout: 'OK pool "Flow" resumed\n' });
  const help = await cli(['drain', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: driveshaft pause\|resume\|drain --pool NAME/);

  // A pool removed from the config whose child still finishes a job, then the daemon stopping.
  await submit(r, 'Alpha', ['hold-1']);
  await waitFor(() => r.endpoint.requests.length === 1 || undefined, { timeoutMs: 10_000, message: 'the held job at the endpoint' });
  writeJobs(r.file, [r.gearmand.label], { Parked: pools(r.endpoint).Parked as PoolSpec });
  r.daemon.proc.kill('SIGHUP');
  await r.daemon.waitForLog((rec) => rec.event === 'reloaded', 'the reload removing Flow');
  assert.equal(await ask('pause Flow'), 'Error: pool "Flow" is not running (removed from the jobs config, stopping)\r\n');
  r.daemon.proc.kill('SIGTERM');
  await r.daemon.waitForLog((rec) => rec.event === 'shutdown', 'the shutdown');
  assert.equal(await ask('pause Parked'), 'Error: the daemon is stopping\r\n');
  r.release();
});

test('a pool child killed while paused should come back paused, and a reload that keeps the pool keeps the pause', async (t) => {
  const r = await rig(t);
  assert.equal((await cli(['pause', '--pool', 'Flow', '--status_port', String(r.statusPort)])).code, 0);
  const pid = (await gauges(r)).get('Flow.child_pid') as number;
  process.kill(pid, 'SIGKILL');
  await r.daemon.waitForLog((rec) => rec.event === 'ready' && rec.pool === 'Flow' && rec.childPid !== pid, 'the restarted child');
  await r.daemon.waitForLog((rec) => rec.msg === 'pool started, paused' && rec.pid !== pid, "the new child's start, paused");
  await waitFor(async () => (await workersFor(r.gearmand, 'Alpha')) === 2 || undefined, { timeoutMs: 10_000, message: 'the new slots registered' });
  // A reload that adds a slot: the new one is paused too.
  writeJobs(r.file, [r.gearmand.label], pools(r.endpoint, 3));
  r.daemon.proc.kill('SIGHUP');
  await r.daemon.waitForLog((rec) => rec.event === 'reloaded' && /resized Flow 2→3/.test(rec.msg), 'the reload');
  await waitFor(async () => (await workersFor(r.gearmand, 'Alpha')) === 3 || undefined, { timeoutMs: 10_000, message: 'three Alpha workers' });
  await submit(r, 'Alpha', ['x-1', 'x-2']);
  await quietWindow();
  assert.equal(r.endpoint.requests.length, 0, 'the restarted child and the added slot grab nothing');
  assert.deepEqual(parseThreads(await statusExchange(r.statusPort, 'threads\n')).filter((l) => l.pool === 'Flow').map((l) => l.state), ['Paused', 'Paused', 'Paused']);
  assert.equal((await cli(['resume', '--pool', 'Flow', '--status_port', String(r.statusPort)])).code, 0);
  await waitFor(async () => (await counter(r, 'Flow.jobs_completed')) === 2 || undefined, { timeoutMs: 10_000, message: 'the jobs to complete once resumed' });
});

test('a reload that removes a paused function drops its pause; re-added, it runs', async (t) => {
  const r = await rig(t);
  assert.match(await statusExchange(r.statusPort, 'pause Flow Beta\n'), /^OK function "Beta" of pool "Flow" paused/);
  writeJobs(r.file, [r.gearmand.label], pools(r.endpoint, 2, ['Alpha']));
  r.daemon.proc.kill('SIGHUP');
  const dropped = await r.daemon.waitForLog((rec) => rec.event === 'pause-dropped', 'the dropped pause');
  assert.equal(dropped.msg, 'function "Beta" of pool "Flow" is no longer paused: the reload removed it');
  await r.daemon.waitForLog((rec) => rec.event === 'reloaded', 'the reload');
  assert.doesNotMatch(await statusExchange(r.statusPort, 'gauges\n'), /Beta/);
  writeJobs(r.file, [r.gearmand.label], pools(r.endpoint));
  r.daemon.proc.kill('SIGHUP');
  await waitFor(() => r.daemon.count((rec) => rec.event === 'reloaded') === 2 || undefined, { timeoutMs: 10_000, message: 'the second reload' });
  await submit(r, 'Beta', ['back']);
  await waitFor(async () => (await counter(r, 'Flow.jobs_completed')) === 1 || undefined, { timeoutMs: 10_000, message: 'the Beta job to complete' });
});

test('drain should pause the pool and answer only once its running jobs are done', async (t) => {
  const r = await rig(t);
  await submit(r, 'Alpha', ['hold-1']);
  await waitFor(() => r.endpoint.requests.length === 1 || undefined, { timeoutMs: 10_000, message: 'the held job at the endpoint' });
  let answeredAt = 0;
  const drain = cli(['drain', '--pool', 'Flow', '--status_port', String(r.statusPort)]).then((result) => {
    answeredAt = Date.now();
    return result;
  });
  await r.daemon.waitForLog((rec) => rec.event === 'drain' && rec.pool === 'Flow', 'the pause of the drain');
  await submit(r, 'Alpha', ['later']);
  // The drain polls every 100 ms: several polls see the held job before it is released.
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(answeredAt, 0, 'drain has not answered while a job runs');
  const releasedAt = Date.now();
  r.release();
  const result = await drain;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^OK pool "Flow" paused and drained: no job running \(waited \d+\.\d s\)\n$/);
  assert.ok(answeredAt >= releasedAt);
  assert.equal(r.endpoint.requests.length, 1, 'the job queued during the drain waits');
  assert.deepEqual(await queued(r, 'Alpha'), { total: 1, running: 0 });
});
