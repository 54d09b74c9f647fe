/**
 * One sleeper per server (wake-group.ts): the rule itself, then what a real gearmand sees through a
 * packet-counting relay — a lone job costs about one NOOP instead of one per idle slot, a burst still
 * wakes every slot, and losing the sleeping connection hands its watch to a parked one at once.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WakeGroup, type WakeMember } from '../../../src/child/gearman/wake-group.js';
import { WorkerPool } from '../../../src/child/worker-pool.js';
import type { ServerAddress } from '../../../src/config/types.js';
import { GearmanClient } from '../../helpers/gearman-client.js';
import { startGearmand, type Gearmand } from '../../helpers/gearmand.js';
import { startEndpoint, type EndpointHandler } from '../../helpers/http-endpoint.js';
import { T } from '../../helpers/packet-builder.js';
import { startPacketTap, type PacketTap } from '../../helpers/packet-tap.js';
import { waitFor } from '../../helpers/wait-for.js';
import { makeSettings, waitForWorkers } from '../fixtures.js';
import { memoryLogger } from '../../helpers/memory-logger.js';

// ── the rule ─────────────────────────────────────────────────────────────────────────────────────

class Member implements WakeMember {
  slotCanGrab = true;
  unparked = 0;
  slept = 0;
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
  unpark(): void {
    this.unparked++;
  }
  sleep(): boolean {
    this.slept++;
    return true;
  }
}

/** A group whose members all got NO_JOB in order: the first sleeps, the rest are parked. */
function idleGroup(count: number): { group: WakeGroup; members: Member[] } {
  const group = new WakeGroup();
  const members = Array.from({ length: count }, (_, i) => new Member(String.fromCharCode(97 + i)));
  for (const member of members) group.admit(member);
  return { group, members };
}

test('WakeGroup should let the first idle connection sleep and park the rest', () => {
  const group = new WakeGroup();
  const [a, b, c] = [new Member('a'), new Member('b'), new Member('c')];
  assert.equal(group.admit(a), true);
  assert.equal(group.admit(b), false);
  assert.equal(group.admit(c), false);
  assert.deepEqual([group.sleeping, group.parked], [1, 2]);
});

test('WakeGroup should hand the watch to the most recently parked connection when the sleeper stops listening', () => {
  const { group, members } = idleGroup(3);
  const [a, b, c] = members as [Member, Member, Member];
  // Woken and grabbing: it still hears about work itself, nobody else is needed.
  group.leave(a, true);
  assert.deepEqual([b.unparked, c.unparked, group.wakes], [0, 0, 0]);
  // Its grab found nothing: it sleeps again.
  assert.equal(group.admit(a), true);
  // Lost without grabbing: a parked one must take over, by sleeping at gearmand.
  group.leave(a, false);
  assert.deepEqual([b.slept, c.slept, b.unparked, c.unparked, group.parked, group.sleeping], [0, 1, 0, 0, 1, 1]);
});

test('WakeGroup should promote a parked connection to sleeper when the sleeper itself got the job', () => {
  const { group, members } = idleGroup(3);
  const [a, b, c] = members as [Member, Member, Member];
  // a was NOOPed and grabbed: nobody sleeps while it runs the job.
  group.leave(a, true);
  group.assigned(a);
  assert.deepEqual([c.slept, c.unparked, b.slept, group.sleeping, group.parked], [1, 0, 0, 1, 1]);
  // a finished, grabbed again and got another job while c sleeps: work is backed up, b grabs too.
  group.assigned(a);
  assert.deepEqual([b.unparked, b.slept, group.parked], [1, 0, 0]);
});

test('WakeGroup should bring parked connections in by GRAB, not by PRE_SLEEP, once the one it promoted last is assigned a job', () => {
  const { group, members } = idleGroup(5);
  const [a, b, c, d, e] = members as [Member, Member, Member, Member, Member];
  // a was NOOPed for a job: e is promoted to sleep, nobody else is woken (a lone job's packets).
  group.leave(a, true);
  group.assigned(a);
  assert.deepEqual([e.slept, d.slept + d.unparked, group.backlog], [1, 0, false]);
  // gearmand NOOPed e's PRE_SLEEP at once and e got a job: a backlog (behind a slow endpoint no slot
  // finishes one meanwhile). d grabs; nobody sleeps, d's GRAB hears of the work.
  group.leave(e, true);
  group.assigned(e);
  assert.deepEqual([d.unparked, d.slept, group.sleeping, group.parked, group.backlog], [1, 0, 0, 2, true]);
  // Each assignment brings in the next by GRAB, one at a time.
  group.assigned(d);
  assert.deepEqual([c.unparked, c.slept, b.unparked, group.parked], [1, 0, 0, 1]);
  // The queue ran dry: c's NO_JOB ends the backlog, and c sleeps, as nobody else does.
  assert.equal(group.admit(c), true);
  assert.equal(group.backlog, false);
  assert.deepEqual([group.sleeping, group.parked], [1, 1]);
});

test('WakeGroup should not take the promoted sleeper\'s job for a backlog once a NO_JOB said the queue was empty', () => {
  const { group, members } = idleGroup(4);
  const [a, b, c, d] = members as [Member, Member, Member, Member];
  group.leave(a, true);
  group.assigned(a);
  assert.equal(d.slept, 1);
  // a ran its job, grabbed again and found nothing: it parks (d sleeps).
  assert.equal(group.admit(a), false);
  // The next lone job reaches d: a parked one is promoted in turn, as before.
  group.leave(d, true);
  group.assigned(d);
  assert.deepEqual([a.slept, b.unparked + c.unparked, group.backlog, group.sleeping, group.parked], [1, 0, false, 1, 2]);
});

test('WakeGroup should wake one parked connection per assignment, skipping slots that cannot grab', () => {
  const { group, members } = idleGroup(3);
  const [, b, c] = members as [Member, Member, Member];
  c.slotCanGrab = false;
  // a, the sleeper, still sleeps: another connection (grabbing after a job) was assigned one.
  group.assigned(b);
  assert.deepEqual([b.unparked, c.unparked, group.parked], [1, 0, 1]);
  // Only slots that cannot grab are left: all of them become READY and grab once free.
  group.assigned(b);
  assert.deepEqual([c.unparked, group.parked], [1, 0]);
  group.assigned(b);
  assert.equal(group.wakes, 2);
});

test('WakeGroup should forget a parked connection that closed', () => {
  const { group, members } = idleGroup(2);
  const [a, b] = members as [Member, Member];
  group.leave(b, false);
  group.leave(a, false);
  assert.deepEqual([b.unparked, group.parked, group.sleeping], [0, 0, 0]);
});

// ── against a real gearmand ─────────────────────────────────────────────────────────────────────

interface TapRig {
  gearmand: Gearmand;
  tap: PacketTap;
  pool: WorkerPool;
  client: GearmanClient;
  fn: string;
}

async function tapRig(t: TestContext, workerCount: number, handler?: EndpointHandler, loopTimeoutMs = 1000): Promise<TapRig> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const tap = await startPacketTap(gearmand.port);
  t.after(() => tap.close());
  const endpoint = await startEndpoint(handler);
  t.after(() => endpoint.close());
  const server: ServerAddress = { host: '127.0.0.1', port: tap.port, label: `127.0.0.1:${tap.port}` };
  const settings = makeSettings([server], endpoint.url, { workerCount }, { loopTimeoutMs });
  const pool = new WorkerPool({ log: memoryLogger('warn').logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  const fn = settings.pool.jobsList[0] as string;
  await waitForWorkers(gearmand, fn, workerCount);
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  return { gearmand, tap, pool, client, fn };
}

/** Connection states over the pool's slots, e.g. { sleeping: 1, parked: 9 }. */
function states(pool: WorkerPool): Record<string, number> {
  const count: Record<string, number> = {};
  for (const slot of pool.status().slots) for (const c of slot.connections ?? []) count[c.state] = (count[c.state] ?? 0) + 1;
  return count;
}

function settled(pool: WorkerPool, workerCount: number): Promise<Record<string, number>> {
  return waitFor(
    () => {
      const now = states(pool);
      return now.sleeping === 1 && now.parked === workerCount - 1 ? now : undefined;
    },
    { timeoutMs: 5000, message: `one sleeping and ${workerCount - 1} parked connections (now ${JSON.stringify(states(pool))})` },
  );
}

test('WorkerPool with 10 idle slots should cost gearmand about one NOOP per lone job, not one per slot', async (t) => {
  const slots = 10;
  const jobs = 20;
  const r = await tapRig(t, slots);
  await settled(r.pool, slots);
  const noopsBefore = r.tap.count('toWorker', T.NOOP);
  const grabsBefore = r.tap.count('toServer', T.GRAB_JOB_UNIQ);
  for (let i = 0; i < jobs; i++) {
    const result = await r.client.submit(r.fn, `lone-${i}`);
    assert.equal(result.outcome, 'complete');
    // Each job starts from the idle state, as a lone job on a quiet queue does.
    await settled(r.pool, slots);
  }
  const noops = r.tap.count('toWorker', T.NOOP) - noopsBefore;
  const grabs = r.tap.count('toServer', T.GRAB_JOB_UNIQ) - grabsBefore;
  // With every idle slot asleep gearmand would send 10 NOOPs per job and get ≥ 10 GRABs back.
  // Expected here, what one lone worker would exchange: one NOOP (to the sleeper), two GRABs (the
  // sleeper's, and the one after WORK_COMPLETE); the stand-in only sends PRE_SLEEP.
  assert.ok(noops <= jobs * 1.5, `NOOPs for ${jobs} lone jobs: ${noops}`);
  assert.ok(grabs <= jobs * 2.5, `GRAB_JOB_UNIQs for ${jobs} lone jobs: ${grabs}`);
  assert.ok(noops >= jobs, `every lone job reached the pool through the sleeper's NOOP (${noops})`);
  const workers = (await r.gearmand.workers()).filter((w) => w.functions.includes(r.fn));
  assert.equal(workers.length, slots, 'parked slots stay registered with gearmand');
});

test('WorkerPool should wake every parked slot for a burst', async (t) => {
  const slots = 10;
  const jobs = 60;
  let inFlight = 0;
  let maxInFlight = 0;
  let answered = 0;
  const r = await tapRig(t, slots, async () => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 40));
    inFlight--;
    answered++;
    return { body: { gearman_ret: 0, response_string: 'ok' } };
  });
  await settled(r.pool, slots);
  await Promise.all(Array.from({ length: jobs }, (_, i) => r.client.submit(r.fn, `burst-${i}`, { background: true })));
  await waitFor(() => answered === jobs || undefined, { timeoutMs: 15_000, message: `${jobs} answers (now ${answered})` });
  assert.equal(maxInFlight, slots, 'every slot ran a job at the same time');
  await settled(r.pool, slots);
});

test('WorkerPool should bring idle slots to a burst by GRAB when no slot finishes a job meanwhile', async (t) => {
  // Behind a slow endpoint no slot finishes a job during a burst, so none grabs again by itself and
  // the group brings the parked ones in, one after another. Each used to cost a PRE_SLEEP → NOOP →
  // GRAB → JOB_ASSIGN chain (bench/e2e slow5000: the 5,000th request out 0.86 s after the first).
  const slots = 100;
  const held: Array<() => void> = [];
  let answered = 0;
  const r = await tapRig(
    t,
    slots,
    async () => {
      await new Promise<void>((release) => held.push(release));
      answered++;
      return { body: { gearman_ret: 0, response_string: 'ok' } };
    },
    60_000,
  );
  await settled(r.pool, slots);
  const preSleepsBefore = r.tap.count('toServer', T.PRE_SLEEP);
  // Frozen while the jobs are written, gearmand queues them all before it hears from any worker.
  await r.gearmand.kill('SIGSTOP');
  let submitted: Promise<unknown>;
  try {
    submitted = Promise.all(Array.from({ length: slots }, (_, i) => r.client.submit(r.fn, `held-${i}`, { background: true })));
  } finally {
    await r.gearmand.kill('SIGCONT');
  }
  await submitted;
  await waitFor(() => held.length === slots || undefined, { timeoutMs: 10_000, message: `${slots} requests in flight (now ${held.length})` });
  // Counted before any answer: each slot still holds its first job.
  const preSleeps = r.tap.count('toServer', T.PRE_SLEEP) - preSleepsBefore;
  for (const release of held.splice(0)) release();
  await waitFor(() => answered === slots || undefined, { timeoutMs: 10_000, message: `${slots} answers (now ${answered})` });
  // The sleeper's successor, whose NOOP came at once; then GRABs only (99 PRE_SLEEPs before).
  assert.ok(preSleeps <= 3, `PRE_SLEEPs while ${slots} idle slots took a burst: ${preSleeps}`);
  await settled(r.pool, slots);
});

test('WorkerPool should hand the watch to a parked slot at once when the sleeping connection dies', async (t) => {
  const slots = 4;
  // A liveness probe cannot be what rescues the job: loop_timeout is far longer than the wait below.
  const r = await tapRig(t, slots, undefined, 60_000);
  await settled(r.pool, slots);
  const sleeper = r.tap.connections.filter((c) => !c.closed && c.toServer.at(-1) === T.PRE_SLEEP);
  assert.equal(sleeper.length, 1, 'exactly one connection ended with PRE_SLEEP');
  // The dead slot cannot come back either: only a parked slot can serve the next job.
  r.tap.refuseNew = true;
  sleeper[0]?.destroy();
  const result = await r.client.submit(r.fn, 'after-the-sleeper-died', { timeoutMs: 5000 });
  assert.equal(result.outcome, 'complete');
  await waitFor(() => states(r.pool).sleeping === 1 || undefined, { timeoutMs: 5000, message: 'a new sleeper' });
});

test('WorkerPool with two gearmands should keep one sleeper per server and serve both', async (t) => {
  const slots = 3;
  const gearmands = await Promise.all([startGearmand(), startGearmand()]);
  for (const g of gearmands) t.after(() => g.stop());
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const servers = gearmands.map((g) => ({ host: g.host, port: g.port, label: g.label }));
  const settings = makeSettings(servers, endpoint.url, { workerCount: slots });
  const pool = new WorkerPool({ log: memoryLogger('warn').logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  const fn = settings.pool.jobsList[0] as string;
  for (const g of gearmands) await waitForWorkers(g, fn, slots);
  const perServer = (): string => {
    const seen: Record<string, Record<string, number>> = {};
    for (const slot of pool.status().slots) {
      for (const c of slot.connections ?? []) {
        const entry = (seen[c.server] ??= {});
        entry[c.state] = (entry[c.state] ?? 0) + 1;
      }
    }
    return JSON.stringify(Object.values(seen).map((entry) => Object.fromEntries(Object.entries(entry).sort())));
  };
  const idle = JSON.stringify([{ parked: 2, sleeping: 1 }, { parked: 2, sleeping: 1 }]);
  await waitFor(() => perServer() === idle || undefined, { timeoutMs: 5000, message: `one sleeper per server (now ${perServer()})` });
  for (const g of gearmands) {
    const client = await GearmanClient.connect(g.port);
    t.after(() => client.close());
    for (let i = 0; i < 5; i++) assert.equal((await client.submit(fn, `on-${g.port}-${i}`)).outcome, 'complete');
  }
  await waitFor(() => perServer() === idle || undefined, { timeoutMs: 5000, message: `one sleeper per server again (now ${perServer()})` });
});
