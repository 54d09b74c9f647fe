/**
 * ERROR packets from gearmand (issue #22, item 2), from a fake gearmand: a GRAB_JOB_UNIQ answered with
 * ERROR falls back to GRAB_JOB (what the Perl Gearman::Server knows; perl-server.test.ts runs the real
 * one), any other ERROR costs a reconnect with a growing backoff, and an ERROR answering a progress
 * packet leaves the running job alone.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WorkerPool } from '../../src/child/worker-pool.js';
import { parseJsonJob, startEndpoint, type Endpoint, type EndpointHandler } from '../helpers/http-endpoint.js';
import { memoryLogger, type MemoryLogger } from '../helpers/memory-logger.js';
import { buildPacket } from '../helpers/packet-builder.js';
import { waitFor } from '../helpers/wait-for.js';
import { FakeGearmand, T, type FakeConnection } from './fake-gearmand.js';
import { makeSettings } from './fixtures.js';

interface ErrorRig {
  fake: FakeGearmand;
  endpoint: Endpoint;
  pool: WorkerPool;
  logger: MemoryLogger;
  fn: string;
}

async function errorRig(t: TestContext, workerCount: number, handler?: EndpointHandler): Promise<ErrorRig> {
  const fake = await FakeGearmand.start();
  t.after(() => fake.close());
  const endpoint = await startEndpoint(handler);
  t.after(() => endpoint.close());
  const logger = memoryLogger('debug');
  const settings = makeSettings([fake.address], endpoint.url, { workerCount }, { loopTimeoutMs: 1000 });
  const pool = new WorkerPool({ log: logger.logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  return { fake, endpoint, pool, logger, fn: settings.pool.jobsList[0] as string };
}

function error(code: string, text: string): Buffer {
  return buildPacket('RES', T.ERROR, [code, text]);
}

test('GearmanConnection should fall back to GRAB_JOB when gearmand answers GRAB_JOB_UNIQ with ERROR', async (t) => {
  const r = await errorRig(t, 2);
  // What the Perl Gearman::Server answers to a command it does not know.
  r.fake.hook = (connection, packet) => {
    if (packet.type === T.GRAB_JOB_UNIQ) {
      connection.send(error('server_error', "Can't locate object method \"CMD_\" via package \"Gearman::Server::Client\""));
      return true;
    }
    if (packet.type !== T.GRAB_JOB) return false;
    connection.sleeping = false;
    const job = r.fake.queue.shift();
    connection.send(job === undefined ? buildPacket('RES', T.NO_JOB, []) : buildPacket('RES', T.JOB_ASSIGN, [job.handle, job.fn, job.workload]));
    return true;
  };
  // One sleeps at the fake, the other parks (wake-group.ts): both after a GRAB_JOB answered NO_JOB.
  await waitFor(() => (r.fake.connections.filter((c) => c.packets.some((p) => p.type === T.GRAB_JOB)).length === 2 && r.fake.connections.some((c) => c.sleeping)) || undefined, {
    timeoutMs: 5000,
    message: 'both slots idle after GRAB_JOB',
  });
  r.fake.addJob({ handle: 'H:fake:1', fn: r.fn, unique: 'never-sent', workload: Buffer.from('w') });
  const answer = await waitFor(() => r.fake.results.find((res) => res.handle === 'H:fake:1'), { timeoutMs: 5000, message: 'the job answered' });
  assert.equal(answer.type, T.WORK_COMPLETE);
  const request = r.endpoint.requests[0];
  assert.ok(request !== undefined);
  assert.equal(parseJsonJob(request.body).unique, '', 'JOB_ASSIGN carries no unique');
  assert.equal(request.headers['driveshaft-unique'], '');
  assert.equal(r.fake.connections.length, 2, 'no reconnect');
  for (const connection of r.fake.connections) {
    assert.ok(connection.packets.filter((p) => p.type === T.GRAB_JOB_UNIQ).length <= 1, 'GRAB_JOB_UNIQ at most once per connection');
  }
  const lines = r.logger.find('does not know GRAB_JOB_UNIQ');
  assert.equal(lines.length, 1, 'one line for the pool');
  assert.equal(lines[0]?.level, 40);
});

test('GearmanConnection should reconnect after an unexpected ERROR, backing off more each time', async (t) => {
  const r = await errorRig(t, 1);
  const sent: FakeConnection[] = [];
  for (let i = 0; i < 3; i++) {
    const idle = await waitFor(() => r.fake.connections.find((c) => c.sleeping && c.closedAt === null && !sent.includes(c)), {
      timeoutMs: 5000,
      message: `sleeping connection ${i + 1}`,
    });
    sent.push(idle);
    idle.send(error('ERR_UNKNOWN', 'something went wrong'));
    await waitFor(() => idle.closedAt ?? undefined, { timeoutMs: 5000, message: `connection ${i + 1} dropped after the ERROR` });
  }
  const retries = r.logger.records.filter((rec) => /sent ERROR "ERR_UNKNOWN"/.test(String((rec.err as { message?: string } | undefined)?.message))).map((rec) => rec.retryInMs as number);
  assert.equal(retries.length, 3);
  // 100, 200, 400 ms ±25 %, although every reconnect was answered (only the jobs reset it).
  assert.ok((retries[0] as number) < (retries[1] as number) && (retries[1] as number) < (retries[2] as number), `backoff grows: ${retries.join(',')}`);
  assert.equal(r.logger.records.filter((rec) => rec.level === 40 && /sent ERROR/.test(String((rec.err as { message?: string } | undefined)?.message))).length, 3, 'one warning per ERROR');
});

test('GearmanConnection should keep the running job when gearmand answers its progress with ERROR', async (t) => {
  const r = await errorRig(t, 1, () => ({ stream: [{ data: { data: 'partial' } }, { data: { gearman_ret: 0, response_string: 'done' }, delayMs: 200 }] }));
  // What the Perl Gearman::Server answers to WORK_DATA, which it does not know.
  r.fake.hook = (connection, packet) => {
    if (packet.type !== T.WORK_DATA) return false;
    connection.send(error('server_error', 'Can\'t locate object method "CMD_work_data"'));
    return true;
  };
  await waitFor(() => r.fake.connections.find((c) => c.sleeping), { timeoutMs: 5000, message: 'a sleeping connection' });
  r.fake.addJob({ handle: 'H:fake:2', fn: r.fn, unique: 'u2', workload: Buffer.from('w') });
  const answer = await waitFor(() => r.fake.results.find((res) => res.handle === 'H:fake:2'), { timeoutMs: 5000, message: 'the job answered' });
  assert.equal(answer.type, T.WORK_COMPLETE);
  assert.equal(answer.data.toString(), 'done');
  assert.equal(r.fake.connections.length, 1, 'no reconnect: it would have re-queued the running job');
  assert.equal(r.endpoint.requests.length, 1);
  assert.equal(r.logger.find('refused a progress packet').filter((rec) => rec.level === 40).length, 1);
});
