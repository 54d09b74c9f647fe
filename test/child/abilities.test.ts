/**
 * Abilities changed at runtime (Slot.setAbilities, GearmanConnection.setAbilities), against a real
 * gearmand: a function paused on every slot stays queued while the others run and runs at once when
 * resumed; a CANT_DO never makes gearmand re-queue a job the slot holds; a function only one slot
 * registers is heard although the other slots park.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WorkerPool } from '../../src/child/worker-pool.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { parseJsonJob, startEndpoint, type Endpoint } from '../helpers/http-endpoint.js';
import { startGearmand, type Gearmand } from '../helpers/gearmand.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { waitFor } from '../helpers/wait-for.js';
import { makeSettings, serverOf, waitForWorkers } from './fixtures.js';

interface AbilitiesRig {
  gearmand: Gearmand;
  endpoint: Endpoint;
  pool: WorkerPool;
  client: GearmanClient;
  /** Held jobs (workload starting with "hold") answer when released. */
  release(workload: string): void;
  posts(workload: string): number;
}

let rigs = 0;

/** A pool on a real gearmand; loop_timeout 10 s, so no liveness probe runs during a test. */
async function abilitiesRig(t: TestContext, workerCount: number, functions: string[]): Promise<AbilitiesRig> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const releases = new Map<string, () => void>();
  const endpoint = await startEndpoint(async (req) => {
    const job = parseJsonJob(req.body);
    if (job.workload.startsWith('hold')) await new Promise<void>((resolve) => releases.set(job.workload, resolve));
    return { body: { gearman_ret: 0, response_string: `${job.function_name}:${job.workload}` } };
  });
  t.after(() => endpoint.close());
  t.after(() => {
    for (const release of releases.values()) release();
  });
  const pool = new WorkerPool({ log: memoryLogger('warn').logger });
  pool.start(makeSettings([serverOf(gearmand)], endpoint.url, { workerCount, jobsList: functions, name: `Abilities${++rigs}` }, { loopTimeoutMs: 10_000 }));
  t.after(() => pool.destroy());
  await waitForWorkers(gearmand, functions[0] as string, workerCount);
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  return {
    gearmand,
    endpoint,
    pool,
    client,
    release: (workload) => releases.get(workload)?.(),
    posts: (workload) => endpoint.requests.filter((req) => parseJsonJob(req.body).workload === workload).length,
  };
}

/** How many of the pool's workers gearmand lists for `fn`. */
async function registered(gearmand: Gearmand, fn: string): Promise<number> {
  return (await gearmand.workers()).filter((w) => w.functions.includes(fn)).length;
}

test('Slot.setAbilities should keep a paused function queued while the others run, and run it at once when resumed', async (t) => {
  const [paused, running] = [`paused${rigs}`, `running${rigs}`];
  const r = await abilitiesRig(t, 3, [paused, running]);
  for (const slot of r.pool.slots) slot.setAbilities([running], true);
  await waitFor(async () => (await registered(r.gearmand, paused)) === 0 || undefined, { timeoutMs: 5000, message: `gearmand to drop ${paused}` });

  const queued = Array.from({ length: 5 }, (_, i) => r.client.submit(paused, `p${i}`, { background: true }));
  await Promise.all(queued);
  // Submitted after the paused ones: had the slots still registered it, gearmand would have handed those out first.
  const others = await Promise.all(Array.from({ length: 5 }, (_, i) => r.client.submit(running, `r${i}`)));
  assert.ok(others.every((res) => res.outcome === 'complete'));
  assert.equal(r.endpoint.requests.filter((req) => parseJsonJob(req.body).function_name === paused).length, 0, 'nothing of the paused function ran');
  assert.deepEqual((await r.gearmand.status()).find((f) => f.function === paused), { function: paused, total: 5, running: 0, availableWorkers: 0 });

  const resumedAt = Date.now();
  for (const slot of r.pool.slots) slot.setAbilities([paused, running], true);
  await waitFor(() => r.endpoint.requests.filter((req) => parseJsonJob(req.body).function_name === paused).length === 5 || undefined, {
    timeoutMs: 5000,
    message: 'the queued jobs of the resumed function to run',
  });
  const tookMs = Date.now() - resumedAt;
  t.diagnostic(`5 queued jobs ran ${tookMs} ms after the resume`);
  // Not a probe (loop_timeout is 10 s): the sleeping connection said PRE_SLEEP again after its CAN_DO.
  assert.ok(tookMs < 2000, `the resumed function's jobs ran after ${tookMs} ms`);
});

test('GearmanConnection should hold a CANT_DO back while its job of that function runs, so gearmand does not re-queue it', async (t) => {
  const [dropped, kept] = [`dropped${rigs}`, `kept${rigs}`];
  const r = await abilitiesRig(t, 2, [dropped, kept]);
  const job = r.client.submit(dropped, 'hold-1');
  await waitFor(() => r.posts('hold-1') === 1 || undefined, { timeoutMs: 5000, message: 'the job to start' });
  const busy = r.pool.slots.find((slot) => !slot.idle);
  assert.ok(busy !== undefined);
  // Only the busy slot stops doing it: the other one would run the job again if gearmand re-queued it.
  busy.setAbilities([kept], false);
  // A round trip to gearmand after the change: a CANT_DO written at once would have been processed by now.
  await r.client.submit(kept, 'after-change');
  assert.equal(await registered(r.gearmand, dropped), 2, 'no CANT_DO while the job runs');
  assert.deepEqual((await r.gearmand.status()).find((f) => f.function === dropped), { function: dropped, total: 1, running: 1, availableWorkers: 2 });
  r.release('hold-1');
  assert.equal((await job).outcome, 'complete');
  await waitFor(async () => (await registered(r.gearmand, dropped)) === 1 || undefined, { timeoutMs: 5000, message: 'the CANT_DO after the answer' });
  assert.equal(r.posts('hold-1'), 1, 'the job ran exactly once');
  // The function still runs on the other slot.
  assert.equal((await r.client.submit(dropped, 'later')).outcome, 'complete');
});

test('GearmanConnection should not park, nor stay its group\'s sleeper, with abilities of its own', async (t) => {
  const [shared, onlyParked, onlySleeper] = [`shared${rigs}`, `onlyParked${rigs}`, `onlySleeper${rigs}`];
  const r = await abilitiesRig(t, 3, [shared]);
  const group = r.pool.wakeGroups[0];
  assert.ok(group !== undefined);
  await waitFor(() => (group.sleeping === 1 && group.parked === 2) || undefined, { timeoutMs: 5000, message: 'one sleeper, two parked' });
  const stateOf = (i: number): string | undefined => r.pool.slots[i]?.connectionStates[0];
  const parked = r.pool.slots.find((_, i) => stateOf(i) === 'parked');
  const sleeper = r.pool.slots.find((_, i) => stateOf(i) === 'sleeping');
  assert.ok(parked !== undefined && sleeper !== undefined);

  // A parked connection with a function of its own must listen for it itself.
  parked.setAbilities([shared, onlyParked], false);
  const parkedOwn = await r.client.submit(onlyParked, 'x', { timeoutMs: 5000 });
  assert.equal(parkedOwn.outcome, 'complete');
  await waitFor(() => parked.connectionStates[0] === 'sleeping' || undefined, { timeoutMs: 5000, message: 'the ungrouped connection asleep on its own' });

  // The group's sleeper leaves the group: another takes its watch, and both functions are heard.
  sleeper.setAbilities([shared, onlySleeper], false);
  assert.equal(group.sleeping, 1, 'a parked member was promoted');
  const [own, common] = await Promise.all([r.client.submit(onlySleeper, 'y', { timeoutMs: 5000 }), r.client.submit(shared, 'z', { timeoutMs: 5000 })]);
  assert.equal(own.outcome, 'complete');
  assert.equal(common.outcome, 'complete');
});
