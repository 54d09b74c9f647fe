/**
 * Connection-level faults against a fake gearmand: malformed and split packets, silent peers, lost
 * wake-ups, refused connections and backoff.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { backoffDelay } from '../../src/child/gearman/gearman-connection.js';
import { MAX_CONNECTS_IN_FLIGHT } from '../../src/child/gearman/server-state.js';
import { WorkerPool } from '../../src/child/worker-pool.js';
import type { ServerAddress } from '../../src/config/types.js';
import type { ChildSettings } from '../../src/ipc/settings.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startEndpoint, type Endpoint } from '../helpers/http-endpoint.js';
import { startGearmand } from '../helpers/gearmand.js';
import { buildPacket } from '../helpers/packet-builder.js';
import { waitFor } from '../helpers/wait-for.js';
import { FakeGearmand, T } from './fake-gearmand.js';
import { makeSettings, serverOf, waitForWorkers } from './fixtures.js';
import { memoryLogger, type MemoryLogger } from '../helpers/memory-logger.js';

interface FakeRig {
  fake: FakeGearmand;
  endpoint: Endpoint;
  pool: WorkerPool;
  settings: ChildSettings;
  logger: MemoryLogger;
}

async function fakeRig(t: TestContext, options: { loopTimeoutMs?: number; extraServers?: ServerAddress[]; workerCount?: number } = {}): Promise<FakeRig> {
  const fake = await FakeGearmand.start();
  t.after(() => fake.close());
  const endpoint = await startEndpoint((req) => ({ body: { gearman_ret: 0, response_string: `r:${req.body.length}` } }));
  t.after(() => endpoint.close());
  const logger = memoryLogger('warn');
  const settings = makeSettings([fake.address, ...(options.extraServers ?? [])], endpoint.url, { workerCount: options.workerCount ?? 1 }, { loopTimeoutMs: options.loopTimeoutMs ?? 1000 });
  const pool = new WorkerPool({ log: logger.logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  return { fake, endpoint, pool, settings, logger };
}

function packetsOf(fake: FakeGearmand, type: number, connection?: number): number {
  return fake.connections.filter((c) => connection === undefined || c.id === connection).reduce((n, c) => n + c.packets.filter((p) => p.type === type).length, 0);
}

test('backoffDelay should grow ×2 from 100 ms, stay under its cap, and jitter ±25%', () => {
  assert.equal(backoffDelay(0, 5000, () => 0.5), 100);
  assert.equal(backoffDelay(1, 5000, () => 0.5), 200);
  assert.equal(backoffDelay(3, 5000, () => 0.5), 800);
  assert.equal(backoffDelay(10, 5000, () => 0.5), 5000);
  assert.equal(backoffDelay(1000, 5000, () => 0.5), 5000);
  assert.equal(backoffDelay(0, 5000, () => 0), 75);
  assert.equal(backoffDelay(0, 5000, () => 1), 125);
  assert.equal(backoffDelay(10, 500, () => 0.99), Math.round(500 * 1.245));
});

test('GearmanConnection should register with RESET_ABILITIES, SET_CLIENT_ID and CAN_DO, prove the server with ECHO_REQ, then grab and sleep', async (t) => {
  const r = await fakeRig(t);
  const connection = await waitFor(() => r.fake.connections.find((c) => c.packets.some((p) => p.type === T.PRE_SLEEP)), { timeoutMs: 5000, message: 'the worker to grab and sleep' });
  const types = connection.packets.map((p) => p.type);
  assert.deepEqual(types.slice(0, 6), [T.RESET_ABILITIES, T.SET_CLIENT_ID, T.CAN_DO, T.ECHO_REQ, T.GRAB_JOB_UNIQ, T.PRE_SLEEP]);
  const slotId = r.pool.status().slots[0]?.id;
  assert.equal(connection.packets[1]?.data.toString(), slotId);
  assert.equal(connection.packets[2]?.data.toString(), r.settings.pool.jobsList[0]);
});

test('GearmanConnection should run a job whose packets arrive split at every boundary', async (t) => {
  const r = await fakeRig(t);
  const first = await waitFor(() => r.fake.connections.find((c) => c.sleeping), { timeoutMs: 5000, message: 'a sleeping worker' });
  const fn = r.settings.pool.jobsList[0] as string;
  // Hand-deliver: NOOP, then the assignment one byte at a time (header split at byte 5 included).
  r.fake.hook = (connection, packet) => {
    if (packet.type !== T.GRAB_JOB_UNIQ) return false;
    const bytes = Buffer.concat([FakeGearmand.jobAssign({ handle: 'H:fake:1', fn, unique: 'u1', workload: Buffer.from('a\u0000b') }), buildPacket('RES', T.NOOP, [])]);
    let i = 0;
    const drip = (): void => {
      if (i >= bytes.length) return;
      connection.send(bytes.subarray(i, i + 1));
      i++;
      setTimeout(drip, 1);
    };
    drip();
    r.fake.hook = null;
    return true;
  };
  first.sleeping = false;
  first.send(buildPacket('RES', T.NOOP, []));
  const result = await waitFor(() => r.fake.results.find((res) => res.handle === 'H:fake:1'), { timeoutMs: 5000, message: 'WORK_COMPLETE for the dripped job' });
  assert.equal(result.type, T.WORK_COMPLETE);
  assert.equal(result.data.toString(), 'r:' + String(r.endpoint.requests[0]?.body.length));
  assert.equal(result.connection, first.id, 'answered on the connection that assigned it');
  assert.equal(r.fake.connections.length, 1, 'no reconnect');
});

test('GearmanConnection should reset only the connection that sent a malformed packet', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const r = await fakeRig(t, { extraServers: [serverOf(gearmand)], loopTimeoutMs: 1000 });
  const fn = r.settings.pool.jobsList[0] as string;
  await waitForWorkers(gearmand, fn, 1);
  // gearmand lists every connection, clients too: keep the ones registered for fn.
  const workerFds = async (): Promise<string[]> => (await gearmand.workers()).filter((w) => w.functions.includes(fn)).map((w) => w.fd);
  const before = await workerFds();
  const fakeFirst = await waitFor(() => r.fake.connections.find((c) => c.sleeping), { timeoutMs: 5000, message: 'a sleeping fake connection' });

  fakeFirst.send(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
  const second = await waitFor(() => r.fake.connections.find((c) => c.id !== fakeFirst.id && c.packets.some((p) => p.type === T.CAN_DO)), {
    timeoutMs: 5000,
    message: 'the worker to reconnect and re-register with the fake',
  });
  assert.ok(fakeFirst.closedAt !== null, 'the bad connection was closed');
  assert.ok(second.openedAt - (fakeFirst.closedAt ?? 0) < 1000);
  const warning = r.logger.find('malformed packet')[0];
  assert.ok(warning !== undefined, 'the reset is logged');
  assert.equal(warning.preview, Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n').subarray(0, 32).toString('hex'));

  // The real gearmand's connection is untouched: same fd, and it still serves.
  assert.deepEqual(await workerFds(), before);
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  assert.equal((await client.submit(fn, 'x')).outcome, 'complete');

  // An oversized / unknown-type header on the new connection: same story.
  second.send(buildPacket('RES', 99, []));
  await waitFor(() => r.fake.connections.length >= 3 || undefined, { timeoutMs: 5000, message: 'a third connection after an unknown packet type' });
  assert.deepEqual(await workerFds(), before);
});

test('GearmanConnection should detect a silent peer within ~2×loop_timeout and reconnect', async (t) => {
  const loop = 500;
  const r = await fakeRig(t, { loopTimeoutMs: loop });
  const first = await waitFor(() => r.fake.connections.find((c) => c.sleeping), { timeoutMs: 5000, message: 'a sleeping worker' });
  // From now on the peer answers nothing (not even the liveness probe) but keeps the socket open.
  r.fake.answering = false;
  const silentSince = Date.now();
  await waitFor(() => first.closedAt ?? undefined, { timeoutMs: 5 * loop, intervalMs: 10, message: 'the worker to drop the silent connection' });
  const detectedAfter = (first.closedAt as number) - silentSince;
  // Probe after ≥1 loop of quiet, dead after one more; ticks are loop/8, and the verdict is judged at
  // the tick before the one that declares it (connection-liveness.ts): up to three ticks late.
  assert.ok(detectedAfter >= loop, `dropped after ${detectedAfter} ms: too early`);
  assert.ok(detectedAfter <= 2 * loop + 3 * (loop / 8) + 150, `dropped after ${detectedAfter} ms (loop_timeout ${loop} ms)`);
  const probes = first.packets.filter((p) => p.at >= silentSince);
  assert.ok(probes.some((p) => p.type === T.GRAB_JOB_UNIQ || p.type === T.ECHO_REQ), 'a liveness probe was sent');
  r.fake.answering = true;
  await waitFor(() => r.fake.connections.find((c) => c.id !== first.id && c.sleeping), { timeoutMs: 5000, message: 'a new registered connection' });
  assert.ok(r.logger.find('lost connection to gearmand').some((rec) => /liveness probe/.test(String((rec.err as { message?: string } | undefined)?.message))));
});

test('Slot should re-grab an idle connection every loop_timeout, catching a lost NOOP', async (t) => {
  const loop = 400;
  const r = await fakeRig(t, { loopTimeoutMs: loop });
  const first = await waitFor(() => r.fake.connections.find((c) => c.sleeping), { timeoutMs: 5000, message: 'a sleeping worker' });
  const fn = r.settings.pool.jobsList[0] as string;
  r.fake.wakeSleepers = false;
  const queuedAt = Date.now();
  r.fake.addJob({ handle: 'H:fake:lost', fn, unique: '', workload: Buffer.from('w') });
  const result = await waitFor(() => r.fake.results.find((res) => res.handle === 'H:fake:lost'), { timeoutMs: 5 * loop, intervalMs: 10, message: 'the job despite the lost NOOP' });
  assert.equal(result.type, T.WORK_COMPLETE);
  const ranAfter = (r.endpoint.requests[0]?.receivedAt ?? Infinity) - queuedAt;
  assert.ok(ranAfter <= loop + loop / 8 + 150, `the lost wake-up was caught after ${ranAfter} ms`);
  assert.equal(r.fake.connections.length, 1, 'no reconnect needed');
  assert.ok(packetsOf(r.fake, T.GRAB_JOB_UNIQ, first.id) >= 2);
});

test('Slot should answer ECHO probes on a connection while a job runs on another', async (t) => {
  const loop = 300;
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const r = await fakeRig(t, { extraServers: [serverOf(gearmand)], loopTimeoutMs: loop });
  const fn = r.settings.pool.jobsList[0] as string;
  await waitForWorkers(gearmand, fn, 1);
  const fakeConn = await waitFor(() => r.fake.connections.find((c) => c.sleeping), { timeoutMs: 5000, message: 'a sleeping fake connection' });
  r.endpoint.setHandler(() => ({ delayMs: 4 * loop, body: { gearman_ret: 0, response_string: 'slow' } }));
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  const job = client.submit(fn, 'slow');
  await waitFor(() => r.endpoint.requests.length === 1 || undefined, { timeoutMs: 5000, message: 'the slow job to start' });
  const startedAt = Date.now();
  // While the job runs the slot may not grab, so the idle fake connection is probed with ECHO_REQ.
  await waitFor(() => fakeConn.packets.some((p) => p.type === T.ECHO_REQ && p.at >= startedAt) || undefined, { timeoutMs: 4 * loop, intervalMs: 10, message: 'an ECHO_REQ probe' });
  assert.equal((await job).outcome, 'complete');
  assert.equal(r.fake.connections.length, 1, 'the probed connection stayed up');
  assert.ok(!fakeConn.packets.some((p) => p.type === T.GRAB_JOB_UNIQ && p.at >= startedAt && p.at < startedAt + 3 * loop), 'no grab while the slot was busy');
});

test('GearmanConnection should not probe the connection that holds a running job, and probe it again once the job ended', async (t) => {
  const loop = 300;
  const r = await fakeRig(t, { loopTimeoutMs: loop });
  const first = await waitFor(() => r.fake.connections.find((c) => c.sleeping), { timeoutMs: 5000, message: 'a sleeping worker' });
  const fn = r.settings.pool.jobsList[0] as string;
  r.endpoint.setHandler(() => ({ delayMs: 5 * loop, body: { gearman_ret: 0, response_string: 'slow' } }));
  r.fake.addJob({ handle: 'H:fake:slow', fn, unique: '', workload: Buffer.from('w') });
  await waitFor(() => r.endpoint.requests.length === 1 || undefined, { timeoutMs: 5000, message: 'the slow job to start' });
  const startedAt = Date.now();
  await waitFor(() => r.fake.results.find((res) => res.handle === 'H:fake:slow'), { timeoutMs: 10 * loop, message: 'the slow job to end' });
  const endedAt = Date.now();
  // Five loop_timeouts of a quiet socket: the old watch probed it with ECHO_REQ four times over.
  assert.deepEqual(first.packets.filter((p) => p.type === T.ECHO_REQ && p.at > startedAt && p.at < endedAt), [], 'no probe while the job ran');
  // Idle again, the connection is watched as before: a re-grab or an ECHO_REQ within a loop and a tick or two.
  const probe = await waitFor(() => first.packets.find((p) => (p.type === T.ECHO_REQ || p.type === T.GRAB_JOB_UNIQ) && p.at > endedAt + 50), { timeoutMs: 4 * loop, message: 'a probe after the job' });
  // The slot did not tick the connection during the job: its quiet starts when the job ended, not earlier.
  assert.ok(probe.at >= endedAt + loop - 50, `probed ${probe.at - endedAt} ms after the job ended, within loop_timeout ${loop}`);
  assert.equal(r.fake.connections.length, 1, 'the connection stayed up');
});

test('GearmanConnection should not take its own busy event loop for a silent server: an answer read late is no timeout', async (t) => {
  // loop_timeout 1 s: a GRAB unanswered for 1 s would be abandoned and the server marked suspect.
  const r = await fakeRig(t, { loopTimeoutMs: 1000 });
  await waitFor(() => r.fake.connections.find((c) => c.sleeping), { timeoutMs: 5000, message: 'a sleeping worker' });
  const fn = r.settings.pool.jobsList[0] as string;
  let blocked = false;
  r.fake.hook = (connection, packet) => {
    if (packet.type !== T.GRAB_JOB_UNIQ || blocked) return false;
    blocked = true;
    // gearmand answers at once, but this process (the worker's event loop too) is busy for 1.5 s
    // before it reads the answer, as a child is while it works through thousands of HTTP answers.
    connection.send(buildPacket('RES', T.NO_JOB, []));
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      // busy
    }
    return true;
  };
  r.fake.addJob({ handle: 'H:fake:none', fn, unique: '', workload: Buffer.from('w') });
  r.fake.queue.length = 0;
  await waitFor(() => (blocked ? true : undefined), { timeoutMs: 5000, message: 'the GRAB' });
  // A few ticks after the loop is free again.
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepEqual(r.logger.find('did not answer a GRAB in time'), [], 'gearmand was not marked suspect');
  assert.deepEqual(r.logger.find('gearmand'), [], 'nothing logged about gearmand at all');
  assert.equal(r.fake.connections.length, 1, 'no reconnect');
});

test("GearmanConnection should connect a pool's slots to one server in turns, at most MAX_CONNECTS_IN_FLIGHT handshakes at once", async (t) => {
  const slots = MAX_CONNECTS_IN_FLIGHT + 36;
  // The server holds every handshake's ECHO_RES back: a connect's turn lasts until it is answered.
  const held: Array<() => void> = [];
  let releasing = false;
  const fake = await FakeGearmand.start();
  t.after(() => fake.close());
  fake.hook = (connection, packet) => {
    if (packet.type !== T.ECHO_REQ || releasing) return false;
    held.push(() => connection.send(buildPacket('RES', T.ECHO_RES, [packet.data])));
    return true;
  };
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const pool = new WorkerPool({ log: memoryLogger('warn').logger });
  // loop_timeout 10 s: no connect timeout interferes while the handshakes are held.
  pool.start(makeSettings([fake.address], endpoint.url, { workerCount: slots }, { loopTimeoutMs: 10_000 }));
  t.after(() => pool.destroy());
  await waitFor(() => (held.length === MAX_CONNECTS_IN_FLIGHT ? true : undefined), { timeoutMs: 5000, message: `${MAX_CONNECTS_IN_FLIGHT} handshakes` });
  // Nothing more connects while those are unanswered.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(fake.connections.length, MAX_CONNECTS_IN_FLIGHT, 'connections opened while every turn was taken');
  releasing = true;
  for (const answer of held.splice(0)) answer();
  await waitFor(() => (pool.status().slots.every((slot) => slot.connectedServers === 1) ? true : undefined), { timeoutMs: 5000, message: 'every slot registered' });
  assert.equal(fake.connections.length, slots, 'one connection per slot, none retried');
});

test('GearmanConnection should retry a refused server with backoff and register once it is up', async (t) => {
  const fake = await FakeGearmand.start();
  const port = fake.port;
  await fake.close();
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const logger = memoryLogger('debug');
  const settings = makeSettings([{ host: '127.0.0.1', port, label: `127.0.0.1:${port}` }], endpoint.url, {}, { loopTimeoutMs: 1000 });
  const pool = new WorkerPool({ log: logger.logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  assert.equal(pool.status().slots[0]?.connectedServers, 0);
  await waitFor(() => logger.find('gearmand connection down').length >= 3 || undefined, { timeoutMs: 5000, message: 'three failed attempts' });
  // Only the first failure is a warning; the retries are debug (no log flood while gearmand is down).
  assert.equal(logger.records.filter((rec) => rec.msg === 'cannot connect to gearmand' && rec.level === 40).length, 1);
  const delays = logger.records.filter((rec) => rec.msg === 'gearmand connection down' || rec.msg === 'cannot connect to gearmand').map((rec) => rec.retryInMs as number);
  assert.ok(delays.every((d) => d <= 1000 * 1.25), `backoff capped at loop_timeout: ${delays.join(',')}`);
  assert.ok((delays[2] ?? 0) > (delays[0] ?? 0), `backoff grows: ${delays.join(',')}`);

  const gearmand = await startGearmand({ port });
  t.after(() => gearmand.stop());
  await waitForWorkers(gearmand, settings.pool.jobsList[0] as string, 1, 5000);
  await waitFor(() => pool.status().slots[0]?.connectedServers === 1 || undefined, { timeoutMs: 2000, message: 'the slot to count the server as connected' });
  assert.ok(logger.find('reconnected to gearmand').length === 1);
});
