/**
 * Several gearmands per slot (docs/architecture.md, Lifecycles): jobs from each answered on the right
 * connection, a gearmand killed and restarted mid-run rejoined without traffic elsewhere, no slot stuck.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WorkerPool } from '../../src/child/worker-pool.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { parseJsonJob, startEndpoint } from '../helpers/http-endpoint.js';
import { startGearmand } from '../helpers/gearmand.js';
import { waitFor } from '../helpers/wait-for.js';
import { makeSettings, serverOf, waitForWorkers } from './fixtures.js';
import { memoryLogger } from '../helpers/memory-logger.js';

test('WorkerPool should serve jobs from two gearmands, each answered on its own connection', async (t) => {
  const [a, b] = await Promise.all([startGearmand(), startGearmand()]);
  t.after(() => a.stop());
  t.after(() => b.stop());
  const endpoint = await startEndpoint((req) => {
    const job = parseJsonJob(req.body);
    return { body: { gearman_ret: 0, response_string: `${job.workload}@${job.job_handle}` } };
  });
  t.after(() => endpoint.close());
  const settings = makeSettings([serverOf(a), serverOf(b)], endpoint.url, { workerCount: 2, jobsList: ['Sum', 'Sum2'] });
  const pool = new WorkerPool({ log: memoryLogger('warn').logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  await Promise.all([waitForWorkers(a, 'Sum', 2), waitForWorkers(b, 'Sum', 2)]);
  const ids = new Set(pool.status().slots.map((s) => s.id));
  for (const gearmand of [a, b]) {
    const workers = (await gearmand.workers()).filter((w) => w.functions.length > 0);
    assert.deepEqual(new Set(workers.map((w) => w.clientId)), ids, 'each slot registered with its id on every server');
    assert.ok(workers.every((w) => w.functions.includes('Sum') && w.functions.includes('Sum2')));
  }

  const [ca, cb] = await Promise.all([GearmanClient.connect(a.port), GearmanClient.connect(b.port)]);
  t.after(() => ca.close());
  t.after(() => cb.close());
  const jobs = [];
  for (let i = 0; i < 100; i++) {
    jobs.push(ca.submit(i % 2 === 0 ? 'Sum' : 'Sum2', `a${i}`).then((res) => ({ res, want: `a${i}` })));
    jobs.push(cb.submit(i % 2 === 0 ? 'Sum' : 'Sum2', `b${i}`).then((res) => ({ res, want: `b${i}` })));
  }
  for (const { res, want } of await Promise.all(jobs)) {
    assert.equal(res.outcome, 'complete');
    // A result sent on the wrong server's connection would never reach this client.
    assert.equal(res.result?.toString(), `${want}@${res.handle}`);
  }
  assert.equal(endpoint.requests.length, 200);
  assert.equal(pool.status().counters.jobs_completed, 200);
});

test('WorkerPool should rejoin a gearmand killed and restarted mid-run, with no slot stuck', async (t) => {
  const [a, b] = await Promise.all([startGearmand(), startGearmand()]);
  t.after(() => a.stop());
  t.after(() => b.stop());
  const endpoint = await startEndpoint((req) => {
    const job = parseJsonJob(req.body);
    return { delayMs: job.workload.startsWith('slow') ? 600 : 0, body: { gearman_ret: 0, response_string: job.workload } };
  });
  t.after(() => endpoint.close());
  const logger = memoryLogger('info');
  const settings = makeSettings([serverOf(a), serverOf(b)], endpoint.url, { workerCount: 2 }, { loopTimeoutMs: 1000 });
  const fn = settings.pool.jobsList[0] as string;
  const pool = new WorkerPool({ log: logger.logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  await Promise.all([waitForWorkers(a, fn, 2), waitForWorkers(b, fn, 2)]);

  const ca = await GearmanClient.connect(a.port);
  const cb = await GearmanClient.connect(b.port);
  t.after(() => cb.close());
  // One slot busy with a job from A when A dies.
  const doomed = ca.submit(fn, 'slow-on-a').catch((error: Error) => error);
  await waitFor(() => endpoint.requests.length === 1 || undefined, { timeoutMs: 5000, message: 'the job from A to start' });
  await a.kill('SIGKILL');
  assert.ok((await doomed) instanceof Error, 'the client of the dead gearmand loses its connection');
  await ca.close();

  // B keeps being served meanwhile, by both slots.
  const duringOutage = await Promise.all([0, 1, 2, 3].map((i) => cb.submit(fn, `b${i}`)));
  assert.ok(duringOutage.every((res) => res.outcome === 'complete'));
  // The job whose connection died finishes at the endpoint; its answer has nowhere to go.
  await waitFor(() => pool.status().slots.every((s) => s.job === null) || undefined, { timeoutMs: 5000, message: 'every slot idle again' });

  await a.restart();
  const requestsBefore = endpoint.requests.length;
  // Rejoined by the reconnect loop alone: no job goes through B meanwhile.
  await waitForWorkers(a, fn, 2, 8000);
  assert.equal(endpoint.requests.length, requestsBefore, 'no traffic was needed to rejoin');
  await waitFor(() => pool.status().slots.every((s) => s.connectedServers === 2) || undefined, { timeoutMs: 2000, message: 'both slots connected to both servers' });
  assert.ok(logger.find('reconnected to gearmand').length >= 2);

  const ca2 = await GearmanClient.connect(a.port);
  t.after(() => ca2.close());
  const after = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => (i % 2 === 0 ? ca2 : cb).submit(fn, `after${i}`)));
  assert.ok(after.every((res, i) => res.outcome === 'complete' && res.result?.toString() === `after${i}`));
});

test('Slot should not let a busy gearmand starve another (round-robin grabs)', async (t) => {
  const [a, b] = await Promise.all([startGearmand(), startGearmand()]);
  t.after(() => a.stop());
  t.after(() => b.stop());
  const endpoint = await startEndpoint((req) => ({ delayMs: 10, body: { gearman_ret: 0, response_string: parseJsonJob(req.body).workload } }));
  t.after(() => endpoint.close());
  const settings = makeSettings([serverOf(a), serverOf(b)], endpoint.url, { workerCount: 1 });
  const fn = settings.pool.jobsList[0] as string;
  const pool = new WorkerPool({ log: memoryLogger('warn').logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  await Promise.all([waitForWorkers(a, fn, 1), waitForWorkers(b, fn, 1)]);
  const [ca, cb] = await Promise.all([GearmanClient.connect(a.port), GearmanClient.connect(b.port)]);
  t.after(() => ca.close());
  t.after(() => cb.close());
  await Promise.all(Array.from({ length: 40 }, (_, i) => ca.submit(fn, `a${i}`, { background: true })));
  await waitFor(() => endpoint.requests.length >= 2 || undefined, { timeoutMs: 5000, message: 'A\'s jobs to be running' });
  const seenBefore = endpoint.requests.length;
  const fromB = await cb.submit(fn, 'from-b');
  assert.equal(fromB.outcome, 'complete');
  const position = endpoint.requests.findIndex((req) => parseJsonJob(req.body).workload === 'from-b');
  // B's job runs right after A's current one (plus at most one more that was being grabbed).
  assert.ok(position - seenBefore <= 2, `B's job was request #${position}, ${position - seenBefore} after it was submitted`);
  await waitFor(() => endpoint.requests.length === 41 || undefined, { timeoutMs: 10_000, message: 'all 41 jobs' });
});
