/**
 * Process faults against the real CLI, a real gearmand and a real endpoint: a master that dies under its
 * children (SIGKILL, the OOM killer), and a child that stops answering (SIGSTOP, a blocked event loop).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand, type Gearmand } from '../helpers/gearmand.js';
import { startEndpoint, type Endpoint } from '../helpers/http-endpoint.js';
import { waitFor } from '../helpers/wait-for.js';
import { isAlive, startServing, tempDir, writeJobs, type Daemon, type LogRecord } from './daemon.js';


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
