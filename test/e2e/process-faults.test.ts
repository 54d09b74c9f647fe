/**
 * Process faults against the real CLI, a real gearmand and a real endpoint: a master that dies under its
 * children (SIGKILL, the OOM killer), and a child that stops answering (SIGSTOP, a blocked event loop).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { freePort } from '../helpers/free-port.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand, type Gearmand } from '../helpers/gearmand.js';
import { startEndpoint, type Endpoint } from '../helpers/http-endpoint.js';
import { waitFor } from '../helpers/wait-for.js';
import { isAlive, nameValues, startServing, statusExchange, type Daemon, type LogRecord } from './daemon.js';
import { writeJobs } from '../helpers/jobs-file.js';
import { tempDir } from '../helpers/temp-dir.js';


/** dist/test/e2e/process-faults.test.js → dist/test/e2e/fixtures/busy-loop-preload.js */
const BUSY_LOOP_PRELOAD = new URL('./fixtures/busy-loop-preload.js', import.meta.url).href;

async function setup(t: TestContext, delayMs: number, count: number): Promise<{ gearmand: Gearmand; endpoint: Endpoint; file: string; client: GearmanClient }> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const endpoint = await startEndpoint(() => ({ delayMs, body: { gearman_ret: 0, response_string: 'finished' } }));
  t.after(() => endpoint.close());
  const file = path.join(tempDir(t), 'jobs.json');
  writeJobs(file, [gearmand.label], { Regular: { uri: endpoint.url, count, jobs: ['Slow'] } });
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  return { gearmand, endpoint, file, client };
}

/** The pid of the child the daemon logged as ready last (after `after` records, if given). */
function readyChildPid(daemon: Daemon, after = 0): number | undefined {
  const record = daemon.logs.slice(after).reverse().find((r) => r.event === 'ready');
  return record?.childPid as number | undefined;
}

/** JSON records among the daemon's stderr and non-JSON stdout (where an orphaned child writes its own). */
function stderrRecords(daemon: Daemon): LogRecord[] {
  const records: LogRecord[] = [];
  for (const line of daemon.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      records.push(JSON.parse(line) as LogRecord);
    } catch {
      // A partial line: the rest has not arrived yet.
    }
  }
  return records;
}

function killIfAlive(pid: number | undefined): void {
  if (pid === undefined || !isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone in between.
  }
}

test('a child whose master is SIGKILLed should finish its running jobs once, log to stderr, then exit', async (t) => {
  const slots = 3;
  const { gearmand, endpoint, file, client } = await setup(t, 1500, slots);
  // loop_timeout 1 s: an orphan's running jobs get the graceful deadline, 4 s; these need 1.5 s.
  const daemon = await startServing(t, ['--jobsconfig', file, '--loop_timeout', '1']);
  const childPid = readyChildPid(daemon) as number;
  t.after(() => killIfAlive(childPid));
  await waitFor(async () => (await gearmand.workers()).filter((w) => w.functions.includes('Slow')).length === slots, { timeoutMs: 10_000, message: `${slots} Slow workers` });
  const jobs = Array.from({ length: slots }, (_, i) => client.submit('Slow', `job ${i}`));
  await waitFor(() => endpoint.requests.length === slots, { timeoutMs: 10_000, message: `${slots} jobs at the endpoint` });

  process.kill(daemon.pid, 'SIGKILL');
  await daemon.exited;
  // What systemd's Restart= does next: a new daemon registers for the same function at once. Jobs the
  // orphan dropped would be handed to it and run a second time.
  const second = await startServing(t, ['--jobsconfig', file, '--loop_timeout', '1']);
  const secondChild = readyChildPid(second);
  t.after(() => killIfAlive(secondChild));

  const results = await Promise.all(jobs);
  assert.deepEqual(results.map((r) => r.outcome), Array(slots).fill('complete'));
  assert.deepEqual(results.map((r) => r.result?.toString()), Array(slots).fill('finished'));
  await waitFor(() => !isAlive(childPid), { timeoutMs: 8000, message: 'the orphaned child to exit' });
  // Nothing left queued or running in gearmand, and the new daemon's worker is there to take anything.
  await waitFor(async () => (await gearmand.status()).find((f) => f.function === 'Slow')?.total === 0, { timeoutMs: 10_000, message: 'an empty Slow queue' });
  await waitFor(async () => (await gearmand.workers()).filter((w) => w.functions.includes('Slow')).length === slots, { timeoutMs: 10_000, message: 'only the new daemon registered' });
  assert.equal(endpoint.requests.length, slots, 'each job ran exactly once');

  const orphan = await waitFor(
    () => {
      const records = stderrRecords(daemon).filter((r) => r.pid === childPid);
      return records.some((r) => r.event === 'orphan-exit') ? records : undefined;
    },
    { timeoutMs: 5000, message: "the orphan's exit record on stderr" },
  );
  const lost = orphan.find((r) => r.event === 'master-lost');
  assert.ok(lost !== undefined, `a master-lost record: ${JSON.stringify(orphan)}`);
  assert.equal(lost.runningJobs, slots);
  assert.equal(lost.deadlineMs, 4000);
  assert.equal(lost.pool, 'Regular');
  const exit = orphan.find((r) => r.event === 'orphan-exit') as LogRecord;
  assert.equal(exit.code, 0);
  assert.equal(exit.runningJobs, 0);
  assert.equal((exit.counters as { jobs_completed: number }).jobs_completed, slots);
  assert.ok((exit.drainMs as number) < 4000, `drained in ${String(exit.drainMs)} ms`);
});

/** The daemon with the status port, the exporter and heartbeat limits short enough for a test. */
async function watchedDaemon(t: TestContext, file: string, killAfter: number, env: NodeJS.ProcessEnv = {}): Promise<{ daemon: Daemon; statusPort: number; base: string }> {
  const statusPort = await freePort();
  const exporterPort = await freePort();
  const daemon = await startServing(
    t,
    ['--jobsconfig', file, '--loop_timeout', '0.5', '--child_unresponsive_after', '1', '--child_kill_after', String(killAfter), '--status_port', String(statusPort), '--exporter_addr', String(exporterPort)],
    env,
  );
  return { daemon, statusPort, base: `http://127.0.0.1:${exporterPort}` };
}

interface Views {
  gauge: number | undefined;
  metric: string | undefined;
  pool: { childResponding: boolean; children: Array<{ pid: number; responding: boolean; unresponsiveSince: string | null }> } | undefined;
  readyz: { status: number; body: string };
}

/** What every view says about the pool's child right now. */
async function views(statusPort: number, base: string): Promise<Views> {
  // At once: each view polls the children, and a stopped child makes each poll wait its 1 s timeout.
  const [gauges, metrics, status, readyz] = await Promise.all([
    statusExchange(statusPort, 'gauges\n').then(nameValues),
    fetch(`${base}/metrics`).then((res) => res.text()),
    fetch(`${base}/status`).then((res) => res.json() as Promise<{ pools: Array<{ name: string } & NonNullable<Views['pool']>> }>),
    fetch(`${base}/readyz`).then(async (res) => ({ status: res.status, body: await res.text() })),
  ]);
  return {
    gauge: gauges.get('Regular.child_responding'),
    metric: /^driveshaft_child_responding\{pool="Regular"\} (\d+)$/m.exec(metrics)?.[1],
    pool: status.pools.find((p) => p.name === 'Regular'),
    readyz,
  };
}

/** Waits until every view shows the child as unresponsive (the exporter caches its snapshot for 1 s). */
async function waitUnresponsive(statusPort: number, base: string, childPid: number): Promise<Views> {
  return waitFor(
    async () => {
      const seen = await views(statusPort, base);
      return seen.gauge === 0 && seen.metric === '0' && seen.pool?.childResponding === false && seen.readyz.status === 503 ? seen : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 200, message: `every view to show child ${childPid} unresponsive` },
  ).then((seen) => {
    const child = seen.pool?.children.find((c) => c.pid === childPid);
    assert.equal(child?.responding, false);
    assert.ok(child?.unresponsiveSince !== null && !Number.isNaN(Date.parse(child?.unresponsiveSince ?? '')), 'unresponsiveSince is a time');
    assert.match(seen.readyz.body, new RegExp(`Regular: child ${childPid} unresponsive: no heartbeat for \\d+ ms`));
    return seen;
  });
}

async function waitResponding(statusPort: number, base: string, message: string): Promise<void> {
  await waitFor(
    async () => {
      const seen = await views(statusPort, base);
      return seen.gauge === 1 && seen.metric === '1' && seen.pool?.childResponding === true && seen.readyz.status === 200;
    },
    { timeoutMs: 10_000, intervalMs: 200, message },
  );
}

test('a stopped child should be shown unresponsive, recover when continued, and be killed and replaced when it stays stopped', async (t) => {
  const { gearmand, endpoint, file, client } = await setup(t, 1500, 2);
  // Killed after 6 s of silence: room to look at every view and continue the child before that.
  const { daemon, statusPort, base } = await watchedDaemon(t, file, 6);
  const childPid = readyChildPid(daemon) as number;
  t.after(() => {
    if (isAlive(childPid)) process.kill(childPid, 'SIGCONT');
  });
  await waitFor(async () => (await gearmand.workers()).filter((w) => w.functions.includes('Slow')).length === 2, { timeoutMs: 10_000, message: '2 Slow workers' });
  await waitResponding(statusPort, base, 'the child to be responding and ready');

  // Stopped for a while (a debugger, a `kill -STOP`): reported, not killed.
  process.kill(childPid, 'SIGSTOP');
  const unresponsive = await daemon.waitForLog((r) => r.event === 'child-unresponsive' && r.childPid === childPid, 'the unresponsive warning');
  assert.ok((unresponsive.silentMs as number) >= 1000);
  await waitUnresponsive(statusPort, base, childPid);
  process.kill(childPid, 'SIGCONT');
  await daemon.waitForLog((r) => r.event === 'child-responding' && r.childPid === childPid, 'the child to respond again');
  await waitResponding(statusPort, base, 'every view to show the child responding again');
  assert.equal(readyChildPid(daemon), childPid, 'not restarted');

  // Stopped for good while it runs a job: killed after --child_kill_after, restarted, the job runs again.
  const job = client.submit('Slow', 'payload');
  await waitFor(() => endpoint.requests.length === 1, { timeoutMs: 10_000, message: 'the job at the endpoint' });
  process.kill(childPid, 'SIGSTOP');
  const seen = daemon.logs.length;
  const kill = await daemon.waitForLog((r) => r.event === 'child-unresponsive-kill' && r.childPid === childPid, 'the kill', 15_000);
  assert.ok((kill.silentMs as number) >= 6000);
  const exit = await daemon.waitForLog((r) => r.event === 'child-exit' && r.childPid === childPid, 'the exit of the killed child');
  assert.equal(exit.signal, 'SIGKILL');
  const replacement = await waitFor(() => {
    const pid = readyChildPid(daemon, seen);
    return pid !== undefined && pid !== childPid ? pid : undefined;
  }, { timeoutMs: 10_000, message: 'a new child' });
  assert.equal(isAlive(childPid), false);
  const result = await job;
  assert.equal(result.outcome, 'complete');
  assert.equal(endpoint.requests.length, 2, 'gearmand re-queued the job of the killed child, the new one ran it');
  await waitResponding(statusPort, base, `the new child ${replacement} to be responding`);
  const counters = nameValues(await statusExchange(statusPort, 'counters\n'));
  assert.equal(counters.get('Regular.child_restarts'), 1);
});

test('a child whose event loop is blocked should be shown unresponsive, then killed and replaced', async (t) => {
  const { gearmand, file } = await setup(t, 10, 1);
  const { daemon, statusPort, base } = await watchedDaemon(t, file, 4, { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import=${BUSY_LOOP_PRELOAD}`.trim() });
  const childPid = readyChildPid(daemon) as number;
  t.after(() => killIfAlive(childPid));
  await waitFor(async () => (await gearmand.workers()).some((w) => w.functions.includes('Slow')), { timeoutMs: 10_000, message: 'the Slow worker' });
  await waitResponding(statusPort, base, 'the child to be responding and ready');
  const seen = daemon.logs.length;
  process.kill(childPid, 'SIGUSR2');
  await daemon.waitForLog((r) => r.event === 'child-unresponsive' && r.childPid === childPid, 'the unresponsive warning');
  await waitUnresponsive(statusPort, base, childPid);
  await daemon.waitForLog((r) => r.event === 'child-unresponsive-kill' && r.childPid === childPid, 'the kill', 15_000);
  const replacement = await waitFor(() => {
    const pid = readyChildPid(daemon, seen);
    return pid !== undefined && pid !== childPid ? pid : undefined;
  }, { timeoutMs: 10_000, message: 'a new child' });
  assert.equal(isAlive(childPid), false);
  await waitResponding(statusPort, base, `the new child ${replacement} to be responding`);
  // The master itself ignored the preload's signal: it is still the same daemon.
  assert.equal(daemon.exitInfo(), null);
});
