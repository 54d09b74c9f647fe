/**
 * How a worker gives gearmand back a job it holds without failing it: the protocol facts the circuit
 * breaker's hand-back rests on, checked against the real gearmand (1.1.20 in Debian 12). Closing the
 * socket that holds the job re-queues it (what gearman_ret 14 and the hand-back use, on every gearmand
 * version); CANT_DO for the job's function re-queues it too on this version.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { GRAB_JOB_UNIQ_PACKET, PacketType, SubmitKind, encodeCanDo, encodeSubmitJob } from '../../src/codec/index.js';
import type { Packet } from '../../src/codec/index.js';
import { startGearmand } from '../helpers/gearmand.js';
import type { Gearmand } from '../helpers/gearmand.js';
import { T, buildPacket } from '../helpers/packet-builder.js';
import { waitFor } from '../helpers/wait-for.js';
import { PacketSocket } from './packet-socket.js';

const FN = 'handback.fact';

/** A background job assigned to `holder`; `other` is registered for the same function and idle. */
async function heldJob(t: TestContext): Promise<{ gearmand: Gearmand; holder: PacketSocket; other: PacketSocket; handle: string }> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const client = await PacketSocket.connect(gearmand.port, gearmand.host);
  t.after(() => client.close());
  const holder = await PacketSocket.connect(gearmand.port, gearmand.host);
  t.after(() => holder.close());
  const other = await PacketSocket.connect(gearmand.port, gearmand.host);
  t.after(() => other.close());
  client.write(encodeSubmitJob(SubmitKind.BACKGROUND, FN, 'u-1', Buffer.from('payload')));
  const created = await client.next();
  assert.equal(created.type, PacketType.JOB_CREATED);
  holder.write(encodeCanDo(FN));
  holder.write(GRAB_JOB_UNIQ_PACKET);
  const assigned = await holder.next();
  assert.equal(assigned.type, PacketType.JOB_ASSIGN_UNIQ);
  other.write(encodeCanDo(FN));
  other.write(GRAB_JOB_UNIQ_PACKET);
  assert.equal((await other.next()).type, PacketType.NO_JOB, 'the job is held, not available');
  return { gearmand, holder, other, handle: (created.args[0] as Buffer).toString() };
}

/** Grabs on `worker` until gearmand assigns it a job. */
function grabUntilAssigned(worker: PacketSocket): Promise<Packet> {
  return waitFor(
    async () => {
      worker.write(GRAB_JOB_UNIQ_PACKET);
      const packet = await worker.next();
      return packet.type === PacketType.JOB_ASSIGN_UNIQ ? packet : undefined;
    },
    { timeoutMs: 5000, message: 'the handed-back job to be assigned to the other worker' },
  );
}

test('gearmand re-queues a held job, unfailed and intact, when its worker drops the socket', async (t) => {
  const { holder, other, handle } = await heldJob(t);
  holder.close();
  const requeued = await grabUntilAssigned(other);
  assert.deepEqual(requeued.args.map((arg) => (arg as Buffer).toString()), [handle, FN, 'u-1', 'payload']);
});

test('gearmand 1.1.20 re-queues a held job when its worker sends CANT_DO for the function', async (t) => {
  const { holder, other, handle } = await heldJob(t);
  holder.write(buildPacket('REQ', T.CANT_DO, [FN]));
  const requeued = await grabUntilAssigned(other);
  assert.equal((requeued.args[0] as Buffer).toString(), handle);
});
