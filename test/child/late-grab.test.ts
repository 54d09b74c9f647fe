/**
 * A GRAB that is not answered in time (docs/reliability.md, A hung gearmand), against a fake gearmand
 * that holds its answer — a fault a real server shows only when stopped (hung-server.test.ts does
 * that): the slot serves its other server meanwhile, a late assignment is taken when the slot is free
 * and given back (socket dropped, unanswered) when it is busy; a server that accepts TCP but answers
 * nothing never counts as connected.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WorkerPool } from '../../src/child/worker-pool.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { parseJsonJob, startEndpoint, type Endpoint } from '../helpers/http-endpoint.js';
import { startGearmand, type Gearmand } from '../helpers/gearmand.js';
import { memoryLogger, type MemoryLogger } from '../helpers/memory-logger.js';
import { buildPacket } from '../helpers/packet-builder.js';
import { waitFor } from '../helpers/wait-for.js';
import { FakeGearmand, T, type FakeConnection } from './fake-gearmand.js';
import { makeSettings, serverOf, waitForWorkers } from './fixtures.js';

/** The GRAB is abandoned after 2 s; the liveness probe would declare the connection dead after 4 s. */
const LOOP_MS = 2000;
/** grabReplyTimeoutMs(2000) plus one tick (2000 / 8) and scheduling slack. */
const ABANDON_WITHIN_MS = 2000 + LOOP_MS / 8 + 400;

interface HeldRig {
  fake: FakeGearmand;
  gearmand: Gearmand;
  endpoint: Endpoint;
  pool: WorkerPool;
  logger: MemoryLogger;
  client: GearmanClient;
  fn: string;
  /** The fake's connection whose GRAB_JOB_UNIQ is being held unanswered. */
  held: FakeConnection;
  /** Answers the held GRAB with `answer`, then whatever was held behind it, in order. */
  release(answer: Buffer): void;
}

/**
 * One slot on a fake gearmand and a real gearmand. The fake answers the first GRAB on a connection
 * and anything after it on that connection only when released, as a stopped server would.
 */
async function heldGrabRig(t: TestContext): Promise<HeldRig> {
  const fake = await FakeGearmand.start();
  t.after(() => fake.close());
  let held: FakeConnection | undefined;
  const behind: Buffer[] = [];
  fake.hook = (connection, packet) => {
    if (held === undefined && packet.type === T.GRAB_JOB_UNIQ) {
      held = connection;
      return true;
    }
    if (connection !== held) return false;
    if (packet.type === T.ECHO_REQ) behind.push(buildPacket('RES', T.ECHO_RES, [packet.data]));
    return true;
  };
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const endpoint = await startEndpoint((req) => {
    const job = parseJsonJob(req.body);
    return { delayMs: job.workload.startsWith('slow') ? 1500 : 0, body: { gearman_ret: 0, response_string: `done:${job.workload}` } };
  });
  t.after(() => endpoint.close());
  const logger = memoryLogger('info');
  const settings = makeSettings([fake.address, serverOf(gearmand)], endpoint.url, { workerCount: 1 }, { loopTimeoutMs: LOOP_MS });
  const fn = settings.pool.jobsList[0] as string;
  const pool = new WorkerPool({ log: logger.logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  await waitForWorkers(gearmand, fn, 1);
  const heldConnection = await waitFor(() => held, { timeoutMs: 5000, message: 'a GRAB on the fake, held unanswered' });
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  const release = (answer: Buffer): void => {
    fake.hook = null;
    heldConnection.send(Buffer.concat([answer, ...behind]));
  };
  return { fake, gearmand, endpoint, pool, logger, client, fn, held: heldConnection, release };
}

test('Slot should stop waiting for a GRAB unanswered for the grab-reply timeout and serve its other server', async (t) => {
  const r = await heldGrabRig(t);
  const submittedAt = Date.now();
  const result = await r.client.submit(r.fn, 'on-g', { timeoutMs: 10_000 });
  const tookMs = Date.now() - submittedAt;
  assert.equal(result.outcome, 'complete');
  assert.equal(result.result?.toString(), 'done:on-g');
  assert.ok(tookMs < ABANDON_WITHIN_MS, `the job on the healthy server took ${tookMs} ms`);
  const warning = r.logger.find('did not answer a GRAB in time');
  assert.equal(warning.length, 1, 'one line says the server is suspect');
  assert.equal(warning[0]?.server, r.fake.address.label);
  assert.equal(r.fake.connections.length, 1, 'the slow server keeps its connection (and its GRAB)');
  assert.equal(r.held.packets.filter((p) => p.type === T.GRAB_JOB_UNIQ).length, 1, 'no second GRAB to a suspect server');
});

test('Slot should take a late assignment on an abandoned GRAB when it is free', async (t) => {
  const r = await heldGrabRig(t);
  await waitFor(() => r.logger.find('did not answer a GRAB in time').length > 0 || undefined, { timeoutMs: ABANDON_WITHIN_MS + 1000, message: 'the GRAB to be abandoned' });
  r.release(FakeGearmand.jobAssign({ handle: 'H:fake:late', fn: r.fn, unique: 'u-late', workload: Buffer.from('late') }));
  const answer = await waitFor(() => r.fake.results.find((res) => res.handle === 'H:fake:late'), { timeoutMs: 5000, message: 'the late job answered' });
  assert.equal(answer.type, T.WORK_COMPLETE);
  assert.equal(answer.connection, r.held.id, 'answered on the connection that assigned it');
  assert.equal(r.endpoint.requests.filter((req) => parseJsonJob(req.body).unique === 'u-late').length, 1);
  assert.equal(r.held.closedAt, null, 'no reconnect');
  assert.equal(r.pool.status().counters.jobs_returned, 0);
  assert.ok(r.logger.find('answers again').length >= 1, 'the late packet cleared the suspect mark');
});

test('Slot should give a late assignment back to gearmand, unstarted, when it is busy by then', async (t) => {
  const r = await heldGrabRig(t);
  const slow = r.client.submit(r.fn, 'slow-on-g', { timeoutMs: 10_000 });
  await waitFor(() => r.endpoint.requests.length === 1 || undefined, { timeoutMs: ABANDON_WITHIN_MS + 1000, message: 'the slow job on the healthy server to start' });
  r.release(FakeGearmand.jobAssign({ handle: 'H:fake:late', fn: r.fn, unique: 'u-late', workload: Buffer.from('late') }));
  await waitFor(() => r.held.closedAt ?? undefined, { timeoutMs: 5000, message: 'the connection holding the late job to be dropped' });
  assert.equal((await slow).outcome, 'complete');
  assert.equal(r.pool.status().counters.jobs_returned, 1);
  const line = r.logger.find('returned to gearmand');
  assert.equal(line.length, 1);
  assert.equal(line[0]?.handle, 'H:fake:late');
  assert.equal(line[0]?.level, 30, 'info: nothing is lost, gearmand re-queues it');
  assert.equal(r.fake.results.filter((res) => res.handle === 'H:fake:late').length, 0, 'neither answered nor failed');
  assert.ok(!r.endpoint.requests.some((req) => parseJsonJob(req.body).unique === 'u-late'), 'never POSTed');
  // The slot comes back to the fake on a new connection, registered and proven.
  await waitFor(() => r.fake.connections.find((c) => c.id !== r.held.id && c.packets.some((p) => p.type === T.GRAB_JOB_UNIQ)), {
    timeoutMs: 5000,
    message: 'a new connection to the fake that grabs',
  });
});

test('GearmanConnection should not count a server that accepts but never answers as connected, and back off', async (t) => {
  const fake = await FakeGearmand.start();
  t.after(() => fake.close());
  fake.answering = false;
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const logger = memoryLogger('debug');
  const pool = new WorkerPool({ log: logger.logger });
  pool.start(makeSettings([fake.address], endpoint.url, {}, { loopTimeoutMs: 1000 }));
  t.after(() => pool.destroy());
  const connectedSeen = new Set<number>();
  await waitFor(
    () => {
      connectedSeen.add(pool.status().slots[0]?.connectedServers ?? -1);
      // Registration and ECHO_REQ leave in one write: a connection just accepted may not have read it yet.
      return (fake.connections.length >= 4 && fake.connections.every((c) => c.packets.length > 0)) || undefined;
    },
    { timeoutMs: 7000, intervalMs: 20, message: 'four connection attempts, each with what it sent' },
  );
  assert.deepEqual([...connectedSeen], [0], 'never connected: the server never answered the handshake');
  for (const connection of fake.connections) {
    assert.deepEqual(
      connection.packets.map((p) => p.type),
      [T.RESET_ABILITIES, T.SET_CLIENT_ID, T.CAN_DO, T.ECHO_REQ],
      'registration and the handshake ECHO_REQ only: no GRAB to a server not proven alive',
    );
  }
  const retries = logger.records
    .filter((rec) => /handshake \(ECHO_REQ\) with .* timed out/.test(String((rec.err as { message?: string } | undefined)?.message)))
    .map((rec) => rec.retryInMs as number);
  assert.ok(retries.length >= 3, `handshake timeouts logged: ${retries.join(',')}`);
  // 100, 200, 400 ms ±25 %: nothing arrived, so nothing reset the backoff.
  for (let i = 1; i < retries.length; i++) assert.ok((retries[i] as number) > (retries[i - 1] as number), `backoff grows: ${retries.join(',')}`);
});

test('GearmanConnection should reconnect when gearmand answers a probe sent after a GRAB it never answered', async (t) => {
  const fake = await FakeGearmand.start();
  t.after(() => fake.close());
  let swallowed: FakeConnection | undefined;
  // The first GRAB is lost; ECHO_REQs behind it are answered.
  fake.hook = (connection, packet) => {
    if (swallowed !== undefined || packet.type !== T.GRAB_JOB_UNIQ) return false;
    swallowed = connection;
    return true;
  };
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const logger = memoryLogger('warn');
  const loop = 500;
  const pool = new WorkerPool({ log: logger.logger });
  pool.start(makeSettings([fake.address], endpoint.url, {}, { loopTimeoutMs: loop }));
  t.after(() => pool.destroy());
  const lost = await waitFor(() => swallowed, { timeoutMs: 5000, message: 'a GRAB swallowed' });
  await waitFor(() => lost.closedAt ?? undefined, { timeoutMs: 4 * loop, message: 'the connection with the lost GRAB dropped' });
  assert.ok(lost.packets.some((p) => p.type === T.ECHO_REQ), 'after a probe');
  assert.ok(logger.find('lost connection').some((rec) => /not the GRAB sent before it/.test(String((rec.err as { message?: string } | undefined)?.message))));
  await waitFor(() => fake.connections.find((c) => c.id !== lost.id && c.sleeping), { timeoutMs: 5000, message: 'a new connection, asleep after NO_JOB' });
});
