/**
 * A gearmand whose packet header declares a size no packet of its type may have (issue #22): the
 * connection is reset as the header arrives, with one log line, instead of waiting for gigabytes that
 * never come until the liveness probe gives up (2×loop_timeout).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WorkerPool } from '../../src/child/worker-pool.js';
import { startEndpoint } from '../helpers/http-endpoint.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { waitFor } from '../helpers/wait-for.js';
import { FakeGearmand, T } from './fake-gearmand.js';
import { makeSettings } from './fixtures.js';

/** A RES header declaring `size` bytes, built by hand: no encoder or builder writes a lying size. */
function header(type: number, size: number): Buffer {
  const bytes = Buffer.from([0x00, 0x52, 0x45, 0x53, 0, 0, 0, 0, 0, 0, 0, 0]);
  bytes.writeUInt32BE(type, 4);
  bytes.writeUInt32BE(size, 8);
  return bytes;
}

// An assignment whose workload would be dropped, and a packet that has no data at all (under the 256 MiB
// packet cap, which alone would have the parser allocate it and wait).
const CASES = [
  ['JOB_ASSIGN_UNIQ', T.JOB_ASSIGN_UNIQ, 0xfffffff0],
  ['NO_JOB', T.NO_JOB, 0x0ffffff0],
] as const;

for (const [name, type, size] of CASES) {
  test(`GearmanConnection should reset at once a connection whose ${name} header declares ${size} bytes`, async (t) => {
    const fake = await FakeGearmand.start();
    t.after(() => fake.close());
    const endpoint = await startEndpoint(() => ({ body: { gearman_ret: 0, response_string: 'ok' } }));
    t.after(() => endpoint.close());
    const logger = memoryLogger('warn');
    // A long loop_timeout: the liveness probe would need 20 s to notice a stalled connection.
    const loopTimeoutMs = 10_000;
    const settings = makeSettings([fake.address], endpoint.url, { workerCount: 1 }, { loopTimeoutMs });
    let sentAt = 0;
    let target = -1;
    fake.hook = (connection, packet) => {
      if (packet.type !== T.GRAB_JOB_UNIQ || target !== -1) return false;
      target = connection.id;
      sentAt = Date.now();
      // The header and the first bytes of a handle, then silence.
      connection.send(Buffer.concat([header(type, size), Buffer.from('H:fake:1\0')]));
      return true;
    };
    const pool = new WorkerPool({ log: logger.logger });
    pool.start(settings);
    t.after(() => pool.destroy());

    const closed = await waitFor(() => fake.connections.find((c) => c.id === target && c.closedAt !== null), { timeoutMs: loopTimeoutMs, message: 'the worker to drop the connection' });
    const elapsed = (closed.closedAt as number) - sentAt;
    assert.ok(elapsed < 1000, `reset ${elapsed} ms after the header, not by the liveness probe`);
    await waitFor(() => fake.connections.find((c) => c.id !== target && c.packets.some((p) => p.type === T.CAN_DO)), { timeoutMs: 5000, message: 'a new connection that registers again' });
    const lines = logger.find('malformed packet');
    assert.equal(lines.length, 1, 'one log line for the reset');
    assert.match(String((lines[0]?.err as { message?: string } | undefined)?.message), new RegExp(`${name} .*${size}`));
  });
}
