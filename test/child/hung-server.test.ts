/**
 * A hung gearmand (issue #19, case 1; docs/reliability.md, A hung gearmand) with real servers, one
 * really SIGSTOPped: the other server's jobs keep their rate, a foreground job on it is not held up,
 * every job runs exactly once, and a job the stopped server assigns late to a busy slot goes back to
 * gearmand and runs later.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { WorkerPool } from '../../src/child/worker-pool.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { parseJsonJob, startEndpoint } from '../helpers/http-endpoint.js';
import { startGearmand } from '../helpers/gearmand.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { waitFor } from '../helpers/wait-for.js';
import { makeSettings, serverOf, waitForWorkers } from './fixtures.js';

const RATE_PER_S = 50;
const BEFORE_MS = 5000;
const STOP_MS = 15_000;
/** When in the stop the foreground job is submitted: after the stopped server's connections were probed and reconnected. */
const FOREGROUND_AT_MS = 12_000;

test('WorkerPool should keep a healthy gearmand at its rate while another is SIGSTOPped, every job once', async (t) => {
  const [g1, g2] = await Promise.all([startGearmand(), startGearmand()]);
  // stop() sends SIGCONT after SIGTERM, so a failed test still ends a stopped server.
  t.after(() => g1.stop());
  t.after(() => g2.stop());
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  // loop_timeout 5 s: within the 15 s stop the stopped server's connections are probed, declared dead
  // and reconnected (the kernel still accepts), which is where the slots used to stall for 2 × 5 s.
  const settings = makeSettings([serverOf(g1), serverOf(g2)], endpoint.url, { workerCount: 4 }, { loopTimeoutMs: 5000 });
  const fn = settings.pool.jobsList[0] as string;
  const logger = memoryLogger('warn');
  const pool = new WorkerPool({ log: logger.logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  await Promise.all([waitForWorkers(g1, fn, 4), waitForWorkers(g2, fn, 4)]);
  const [c1, c2] = await Promise.all([GearmanClient.connect(g1.port), GearmanClient.connect(g2.port)]);
  t.after(() => c1.close());
  t.after(() => c2.close());

  const created: Array<Promise<unknown>> = [];
  let fed = 0;
  const feed = setInterval(() => {
    const unique = `g1-${fed++}`;
    created.push(c1.submit(fn, unique, { background: true, unique }));
  }, 1000 / RATE_PER_S);
  t.after(() => clearInterval(feed));

  await delay(BEFORE_MS);
  await g2.kill('SIGSTOP');
  const stoppedAt = Date.now();
  // Written now, queued by g2 once it runs again.
  const g2Jobs = Array.from({ length: 10 }, (_, i) => c2.submit(fn, `g2-${i}`, { background: true, unique: `g2-${i}`, timeoutMs: 60_000 }));
  await delay(FOREGROUND_AT_MS);
  const foregroundAt = Date.now();
  const foreground = await c1.submit(fn, 'fg', { unique: 'fg', timeoutMs: 30_000 });
  const foregroundMs = Date.now() - foregroundAt;
  await delay(Math.max(0, stoppedAt + STOP_MS - Date.now()));
  await g2.kill('SIGCONT');
  const resumedAt = Date.now();
  clearInterval(feed);
  await Promise.all([...created, ...g2Jobs]);

  const expected = fed + g2Jobs.length + 1;
  await waitFor(() => endpoint.requests.length >= expected || undefined, { timeoutMs: 30_000, message: `${expected} jobs at the endpoint` });
  const received = endpoint.requests.map((req) => ({ unique: parseJsonJob(req.body).unique, at: req.receivedAt }));
  const runs = new Map<string, number>();
  for (const { unique } of received) runs.set(unique, (runs.get(unique) ?? 0) + 1);
  assert.equal(runs.size, expected, 'every job reached the endpoint');
  assert.deepEqual([...runs].filter(([, n]) => n !== 1), [], 'no job ran twice');

  const g1Between = (from: number, to: number): number => received.filter((r) => r.unique.startsWith('g1-') && r.at >= from && r.at < to).length;
  // The first second of the feed warms up; both windows are rates per second.
  const before = g1Between(stoppedAt - BEFORE_MS + 1000, stoppedAt) / ((BEFORE_MS - 1000) / 1000);
  const during = g1Between(stoppedAt, resumedAt) / ((resumedAt - stoppedAt) / 1000);
  const g2RunAfterMs = Math.max(...received.filter((r) => r.unique.startsWith('g2-')).map((r) => r.at)) - resumedAt;
  t.diagnostic(`g1 jobs/s before ${before.toFixed(1)}, during the stop ${during.toFixed(1)} (${((100 * during) / before).toFixed(1)} %); foreground job ${foregroundMs} ms; g2's 10 queued jobs all ran ${g2RunAfterMs} ms after SIGCONT`);
  assert.ok(during >= 0.9 * before, `g1 kept ${((100 * during) / before).toFixed(1)} % of its rate (${during.toFixed(1)} vs ${before.toFixed(1)} jobs/s)`);
  assert.equal(foreground.outcome, 'complete');
  assert.ok(foregroundMs < 1000, `a foreground job on g1 took ${foregroundMs} ms during the stop`);
  assert.ok(received.filter((r) => r.unique.startsWith('g2-')).every((r) => r.at >= resumedAt), "g2's jobs ran after SIGCONT");
  assert.ok(g2RunAfterMs < 5000, `g2's queued jobs ran within ${g2RunAfterMs} ms of SIGCONT`);
});

test('Slot should give back a job a SIGSTOPped gearmand assigns late to the busy slot, and run it once later', async (t) => {
  const [g1, g2] = await Promise.all([startGearmand(), startGearmand()]);
  t.after(() => g1.stop());
  t.after(() => g2.stop());
  const releases = new Map<string, () => void>();
  const endpoint = await startEndpoint(async (req) => {
    const job = parseJsonJob(req.body);
    if (job.workload.startsWith('hold')) await new Promise<void>((resolve) => releases.set(job.workload, resolve));
    return { body: { gearman_ret: 0, response_string: job.workload } };
  });
  t.after(() => endpoint.close());
  t.after(() => {
    for (const release of releases.values()) release();
  });
  // loop_timeout 4 s: the GRAB is abandoned after 2 s, the liveness probe would only give up after 8 s.
  const settings = makeSettings([serverOf(g1), serverOf(g2)], endpoint.url, { workerCount: 1 }, { loopTimeoutMs: 4000 });
  const fn = settings.pool.jobsList[0] as string;
  const logger = memoryLogger('info');
  const pool = new WorkerPool({ log: logger.logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  await Promise.all([waitForWorkers(g1, fn, 1), waitForWorkers(g2, fn, 1)]);
  const [c1, c2] = await Promise.all([GearmanClient.connect(g1.port), GearmanClient.connect(g2.port)]);
  t.after(() => c1.close());
  t.after(() => c2.close());
  const seen = (workload: string): number => endpoint.requests.filter((req) => parseJsonJob(req.body).workload === workload).length;

  // The slot is busy with a job from g1 while g2 gets a job: g2's connection is woken, READY.
  const first = c1.submit(fn, 'hold-1');
  await waitFor(() => seen('hold-1') === 1 || undefined, { timeoutMs: 5000, message: 'the first job from g1 to start' });
  await c2.submit(fn, 'from-g2', { background: true, unique: 'from-g2' });
  await waitFor(() => pool.status().slots[0]?.connections?.[1]?.state === 'ready' || undefined, { timeoutMs: 5000, message: "g2's connection woken" });
  // g2 stops; the slot's next GRAB (round-robin: g2's turn) goes unanswered and is abandoned.
  await g2.kill('SIGSTOP');
  releases.get('hold-1')?.();
  assert.equal((await first).outcome, 'complete');
  await waitFor(() => logger.find('did not answer a GRAB in time').length > 0 || undefined, { timeoutMs: 5000, message: 'the GRAB to g2 abandoned' });
  // What /status, /metrics and the page show an operator: g2 is skipped, g1 is not.
  const suspect = (): Array<[string, boolean]> => (pool.status().servers ?? []).map((s) => [s.server, s.suspectSince !== null]);
  assert.deepEqual(suspect(), [
    [g1.label, false],
    [g2.label, true],
  ]);
  // The slot takes a job from g1 and is busy when g2 wakes up and answers the old GRAB.
  const second = c1.submit(fn, 'hold-2');
  await waitFor(() => seen('hold-2') === 1 || undefined, { timeoutMs: 5000, message: 'the second job from g1 to start' });
  await g2.kill('SIGCONT');
  await waitFor(() => pool.status().counters.jobs_returned === 1 || undefined, { timeoutMs: 5000, message: 'the late job returned to g2' });
  assert.deepEqual(suspect(), [
    [g1.label, false],
    [g2.label, false],
  ], 'g2 answered again');
  assert.equal(seen('from-g2'), 0, 'not started while the slot was busy');
  releases.get('hold-2')?.();
  assert.equal((await second).outcome, 'complete');
  await waitFor(() => seen('from-g2') === 1 || undefined, { timeoutMs: 5000, message: "g2's job to run once the slot is free" });
  await waitFor(async () => (await g2.status()).every((f) => f.total === 0) || undefined, { timeoutMs: 5000, message: "g2's queue empty" });
  assert.equal(seen('from-g2'), 1, 'ran exactly once');
  assert.equal(pool.status().counters.jobs_failed, 0);
});
