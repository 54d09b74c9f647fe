/**
 * A job's identity reaches the endpoint as its exact bytes: the unique (the endpoint's idempotency key)
 * and the function name, in the JSON body (base64 with `<field>_encoding` when they are not UTF-8), in
 * the percent-encoded Driveshaft-* headers and in multipart parts. Uniques go through a real gearmand;
 * a function name that is not UTF-8 only a hostile gearmand sends (a real one assigns only names a
 * worker registered, and a pool registers the UTF-8 names of its config), so that case uses the fake.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { WorkerPool } from '../../../src/child/worker-pool.js';
import type { RequestFormat } from '../../../src/config/types.js';
import { parseJsonJob, parseMultipart, startEndpoint } from '../../helpers/http-endpoint.js';
import type { RecordedRequest } from '../../helpers/http-endpoint.js';
import { memoryLogger } from '../../helpers/memory-logger.js';
import { buildPacket } from '../../helpers/packet-builder.js';
import { waitFor } from '../../helpers/wait-for.js';
import { FakeGearmand, T } from '../fake-gearmand.js';
import { makeSettings, rig } from '../fixtures.js';

const FORMATS: readonly RequestFormat[] = ['json', 'multipart'];

/** Two uniques the probe saw collide, their UTF-8 siblings, and a real U+FFFD (valid UTF-8: stays text). */
const UNIQUES: readonly Buffer[] = [
  Buffer.concat([Buffer.from([0xff]), Buffer.from('-order-1')]),
  Buffer.concat([Buffer.from([0xfe]), Buffer.from('-order-1')]),
  Buffer.from('\uFFFD-order-1'),
  Buffer.from('order-1'),
  Buffer.from('ünï-order-1'),
];

/** A percent-encoded header value (docs/http-contract.md) back to bytes, whatever they are. */
function percentDecoded(value: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '%') {
      bytes.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(value.charCodeAt(i));
    }
  }
  return Buffer.from(bytes);
}

interface Identity {
  functionName: Buffer;
  unique: Buffer;
}

/** The function name and unique a request carried in its body, checked against its headers. */
function identityOf(request: RecordedRequest, format: RequestFormat): Identity {
  const fromHeaders = { functionName: percentDecoded(String(request.headers['driveshaft-function'])), unique: percentDecoded(String(request.headers['driveshaft-unique'])) };
  let fromBody: Identity;
  if (format === 'json') {
    const job = parseJsonJob(request.body);
    // base64 exactly when the bytes have no exact text form.
    assert.equal(job.unique_encoding, isUtf8(job.uniqueBytes) ? undefined : 'base64', `unique ${job.uniqueBytes.toString('hex')}`);
    assert.equal(job.function_name_encoding, isUtf8(job.functionNameBytes) ? undefined : 'base64', `function ${job.functionNameBytes.toString('hex')}`);
    fromBody = { functionName: job.functionNameBytes, unique: job.uniqueBytes };
  } else {
    const parts = parseMultipart(request.body, String(request.headers['content-type']));
    fromBody = { functionName: parts[0]?.data ?? Buffer.alloc(0), unique: parts[2]?.data ?? Buffer.alloc(0) };
  }
  assert.deepEqual(fromHeaders, fromBody, 'the headers and the body carry the same bytes');
  return fromBody;
}

for (const format of FORMATS) {
  test(`WorkerPool (${format}) should send each unique's exact bytes, so uniques that are not UTF-8 stay distinct`, async (t) => {
    const r = await rig(t, { pool: { requestFormat: format } });
    for (const unique of UNIQUES) {
      assert.equal((await r.client.submit(r.fn, 'x', { unique })).outcome, 'complete', unique.toString('hex'));
    }
    const sent = r.endpoint.requests.map((request) => identityOf(request, format));
    assert.deepEqual(
      sent.map((identity) => identity.unique.toString('hex')),
      UNIQUES.map((unique) => unique.toString('hex')),
    );
    for (const identity of sent) assert.equal(identity.functionName.toString(), r.fn);
  });
}

/** A pool against a fake gearmand that assigns whatever function name bytes the test queues. */
async function hostileRig(t: TestContext, format: RequestFormat): Promise<{ fake: FakeGearmand; assign: (functionName: Buffer) => void; requests: RecordedRequest[] }> {
  const fake = await FakeGearmand.start();
  t.after(() => fake.close());
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const pool = new WorkerPool({ log: memoryLogger('warn').logger });
  pool.start(makeSettings([fake.address], endpoint.url, { requestFormat: format }));
  t.after(() => pool.destroy());
  const assignments: Buffer[] = [];
  fake.hook = (connection, packet) => {
    if (packet.type !== T.GRAB_JOB_UNIQ || assignments.length === 0) return false;
    connection.send(assignments.shift() as Buffer);
    return true;
  };
  await waitFor(() => fake.connections.some((connection) => connection.sleeping) || undefined, { timeoutMs: 5000, message: 'the worker to sleep' });
  let handles = 0;
  return {
    fake,
    requests: endpoint.requests,
    assign: (functionName) => {
      assignments.push(buildPacket('RES', T.JOB_ASSIGN_UNIQ, [`H:fake:${++handles}`, functionName, `u-${handles}`, 'x']));
      for (const connection of fake.open()) {
        if (connection.sleeping) {
          connection.sleeping = false;
          connection.send(buildPacket('RES', T.NOOP, []));
        }
      }
    },
  };
}

/** Function names a hostile gearmand may assign: two that decode to the same U+FFFD text, and their UTF-8 siblings. */
const FUNCTION_NAMES: readonly Buffer[] = [
  Buffer.concat([Buffer.from('Sum'), Buffer.from([0xff])]),
  Buffer.concat([Buffer.from('Sum'), Buffer.from([0xfe])]),
  Buffer.from('Sum\uFFFD'),
  Buffer.from('Sum'),
  Buffer.concat([Buffer.from('Sum'), Buffer.from([0xff])]),
];

for (const format of FORMATS) {
  test(`WorkerPool (${format}) should send a function name's exact bytes, even ones a hostile gearmand sends that are not UTF-8`, async (t) => {
    const r = await hostileRig(t, format);
    for (const [index, functionName] of FUNCTION_NAMES.entries()) {
      r.assign(functionName);
      await waitFor(() => r.fake.results.length > index || undefined, { timeoutMs: 5000, message: `job ${index + 1} to be answered` });
      assert.equal(r.fake.results[index]?.type, T.WORK_COMPLETE);
    }
    assert.deepEqual(
      r.requests.map((request) => identityOf(request, format).functionName.toString('hex')),
      FUNCTION_NAMES.map((name) => name.toString('hex')),
    );
  });
}
