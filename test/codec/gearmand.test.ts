/**
 * The codec against a real gearmand, on raw sockets: what the encoders send is what gearmand
 * understands, and what gearmand sends parses to the same bytes the client submitted.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import {
  GRAB_JOB_UNIQ_PACKET,
  PRE_SLEEP_PACKET,
  PacketType,
  SubmitKind,
  encodeCanDo,
  encodeEchoReq,
  encodeSetClientId,
  encodeSubmitJob,
  encodeWorkCompleteHead,
  type Packet,
} from '../../src/codec/index.js';
import { startGearmand, type Gearmand } from '../helpers/gearmand.js';
import { waitFor } from '../helpers/wait-for.js';
import { BINARY, prng, randomBytes } from './fixtures.js';
import { PacketSocket } from './packet-socket.js';

async function start(t: TestContext): Promise<Gearmand> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  return gearmand;
}

async function open(t: TestContext, gearmand: Gearmand): Promise<PacketSocket> {
  const socket = await PacketSocket.connect(gearmand.port, gearmand.host);
  t.after(() => socket.close());
  return socket;
}

async function expectType(socket: PacketSocket, type: number): Promise<Packet> {
  const packet = await socket.next();
  assert.equal(packet.type, type, `expected packet type ${type}, got ${packet.type} (${packet.args.map(String).join(', ')})`);
  return packet;
}

/** Binary result: every byte value, NULs at the ends and inside, invalid UTF-8. */
function binaryResult(size: number, seed: number): Buffer {
  const bytes = randomBytes(prng(seed), size);
  BINARY.copy(bytes, Math.floor(size / 2));
  bytes[0] = 0;
  bytes[size - 1] = 0;
  return bytes;
}

describe('codec against gearmand', () => {
  for (const [label, workloadSize, resultSize] of [
    ['small binary', 64, 48],
    ['1 MiB binary (split across reads)', 1024 * 1024, 1024 * 1024 + 7],
  ] as const) {
    test(`Parser and encoders should carry a ${label} job from client to worker and its result back`, async (t) => {
      const gearmand = await start(t);
      const client = await open(t, gearmand);
      const worker = await open(t, gearmand);
      const fn = 'codec.roundtrip';
      const unique = `u-${label.length}-\u00e9`;
      const workload = binaryResult(workloadSize, 1);
      const result = binaryResult(resultSize, 2);

      client.write(encodeSubmitJob(SubmitKind.NORMAL, fn, unique, workload));
      const created = await expectType(client, PacketType.JOB_CREATED);
      const handle = created.args[0] as Buffer;
      assert.match(handle.toString(), /^H:/);

      worker.write(encodeCanDo(fn));
      worker.write(GRAB_JOB_UNIQ_PACKET);
      const assign = await expectType(worker, PacketType.JOB_ASSIGN_UNIQ);
      assert.equal(assign.magic, 'RES');
      assert.deepEqual(assign.args[0], handle);
      assert.equal(assign.args[1]?.toString(), fn);
      assert.equal(assign.args[2]?.toString(), unique);
      assert.ok(assign.args[3]?.equals(workload), 'workload bytes differ');

      // The worker's large-result path: a small head, then the caller's buffer, one packet on the wire.
      worker.socket.cork();
      worker.write(encodeWorkCompleteHead(assign.args[0] as Buffer, result.length));
      worker.write(result);
      worker.socket.uncork();

      const complete = await expectType(client, PacketType.WORK_COMPLETE);
      assert.deepEqual(complete.args[0], handle);
      assert.equal(complete.args[1]?.length, result.length);
      assert.ok(complete.args[1]?.equals(result), 'result bytes differ');

      // gearmand took the packet as a whole: the job is gone and the worker is free for the next one.
      worker.write(GRAB_JOB_UNIQ_PACKET);
      await expectType(worker, PacketType.NO_JOB);
      const status = await gearmand.status();
      assert.deepEqual(status.find((s) => s.function === fn), { function: fn, total: 0, running: 0, availableWorkers: 1 });
    });
  }

  test('PRE_SLEEP_PACKET should make gearmand wake the worker with NOOP when a job is submitted', async (t) => {
    const gearmand = await start(t);
    const worker = await open(t, gearmand);
    const client = await open(t, gearmand);
    const fn = 'codec.sleep';

    worker.write(encodeSetClientId('codec-sleeper'));
    worker.write(encodeCanDo(fn));
    worker.write(GRAB_JOB_UNIQ_PACKET);
    await expectType(worker, PacketType.NO_JOB);

    worker.write(PRE_SLEEP_PACKET);
    // gearmand answers a connection's packets in order: once ECHO_RES is back, PRE_SLEEP has been
    // handled, and no NOOP came for it because nothing was queued.
    worker.write(encodeEchoReq(BINARY));
    const echo = await expectType(worker, PacketType.ECHO_RES);
    assert.ok(echo.args[0]?.equals(BINARY));
    assert.equal(worker.pending, 0);
    await waitFor(async () => (await gearmand.workers()).find((w) => w.clientId === 'codec-sleeper'), {
      timeoutMs: 5_000,
      message: 'gearmand to list the sleeping worker',
    });

    client.write(encodeSubmitJob(SubmitKind.BACKGROUND, fn, 'wake-1', BINARY));
    await expectType(client, PacketType.JOB_CREATED);
    const noop = await expectType(worker, PacketType.NOOP);
    assert.deepEqual(noop.args, []);

    worker.write(GRAB_JOB_UNIQ_PACKET);
    const assign = await expectType(worker, PacketType.JOB_ASSIGN_UNIQ);
    assert.equal(assign.args[2]?.toString(), 'wake-1');
    assert.ok(assign.args[3]?.equals(BINARY));
  });
});
