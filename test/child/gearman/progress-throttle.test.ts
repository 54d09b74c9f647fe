/**
 * ProgressThrottle on a real loopback socket, its packets read back by the codec's parser on the other
 * end (what gearmand would receive). The end-to-end figures are in test/child/progress.test.ts.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { PacketType, Parser, encodeWorkFail } from '../../../src/codec/index.js';
import { PROGRESS_BACKLOG_BYTES, ProgressThrottle, STATUS_INTERVAL_MS } from '../../../src/child/gearman/progress-throttle.js';
import { waitFor } from '../../helpers/wait-for.js';

const HANDLE = Buffer.from('H:test:1');

interface Received {
  /** `status n/d`, `data …`, `warning …`, `fail` in arrival order. */
  lines: string[];
  /** performance.now() per line. */
  at: number[];
}

/** A connected socket pair: `socket` is the worker's end, `peer` gearmand's, parsed into `received`. */
async function socketPair(t: TestContext): Promise<{ socket: net.Socket; peer: net.Socket; received: Received }> {
  const received: Received = { lines: [], at: [] };
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const socket = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', noDelay: true });
  const peer = await accepted;
  t.after(() => {
    socket.destroy();
    peer.destroy();
    server.close();
  });
  const parser = new Parser({
    onPacket: (packet) => {
      const args = packet.args.map((arg) => arg.toString());
      const line =
        packet.type === PacketType.WORK_STATUS
          ? `status ${args[1]}/${args[2]}`
          : packet.type === PacketType.WORK_DATA
            ? `data ${args[1]}`
            : packet.type === PacketType.WORK_WARNING
              ? `warning ${args[1]}`
              : packet.type === PacketType.WORK_FAIL
                ? 'fail'
                : `type ${packet.type}`;
      assert.equal(args[0], HANDLE.toString(), 'every packet names the job');
      received.lines.push(line);
      received.at.push(performance.now());
    },
    onError: (error) => assert.fail(error),
  });
  peer.on('data', (chunk: Buffer) => parser.push(chunk));
  await new Promise<void>((resolve) => (socket.connecting ? socket.once('connect', () => resolve()) : resolve()));
  return { socket, peer, received };
}

/** A reader that records its pauses and resumes. */
function reader(): { paused: boolean; pauses: number; resumes: number; pauseProgress(): void; resumeProgress(): void } {
  return {
    paused: false,
    pauses: 0,
    resumes: 0,
    pauseProgress() {
      this.paused = true;
      this.pauses++;
    },
    resumeProgress() {
      this.paused = false;
      this.resumes++;
    },
  };
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

test('ProgressThrottle.add should send the first status at once, then only the latest one per interval', async (t) => {
  const { socket, received } = await socketPair(t);
  const throttle = new ProgressThrottle(socket, HANDLE, reader(), () => true);
  const sentAt = performance.now();
  for (let i = 1; i <= 1000; i++) throttle.add({ kind: 'status', numerator: i, denominator: 1000 });
  await waitFor(() => received.lines.length >= 2, { timeoutMs: 5000, message: 'two statuses' });
  assert.deepEqual(received.lines, ['status 1/1000', 'status 1000/1000']);
  assert.ok((received.at[1] as number) - sentAt >= STATUS_INTERVAL_MS - 2, `the second status came ${((received.at[1] as number) - sentAt).toFixed(1)} ms after the first`);
  throttle.finish();
});

test('ProgressThrottle.add should arm no timer for data and warning lines, nor for a status it sends at once', async (t) => {
  const { socket, received } = await socketPair(t);
  const throttle = new ProgressThrottle(socket, HANDLE, reader(), () => true);
  const before = timers();
  throttle.add({ kind: 'status', numerator: 1, denominator: 2 });
  for (let i = 0; i < 1000; i++) throttle.add({ kind: i % 2 === 0 ? 'data' : 'warning', data: Buffer.from(String(i)) });
  assert.equal(timers(), before, 'no timer');
  throttle.add({ kind: 'status', numerator: 2, denominator: 2 });
  assert.equal(timers(), before + 1, 'one timer for the held status');
  throttle.finish();
  assert.equal(timers(), before, 'finish cleared it');
  await waitFor(() => received.lines.length === 1002, { timeoutMs: 5000, message: '1002 packets' });
});

test('ProgressThrottle.finish should write the held status and what waited behind it, before the answer', async (t) => {
  const { socket, received } = await socketPair(t);
  const throttle = new ProgressThrottle(socket, HANDLE, reader(), () => true);
  throttle.add({ kind: 'status', numerator: 1, denominator: 3 });
  throttle.add({ kind: 'data', data: Buffer.from('a') });
  throttle.add({ kind: 'status', numerator: 2, denominator: 3 });
  throttle.add({ kind: 'data', data: Buffer.from('b') });
  throttle.add({ kind: 'status', numerator: 3, denominator: 3 });
  throttle.add({ kind: 'warning', data: Buffer.from('c') });
  socket.cork();
  throttle.finish();
  socket.write(encodeWorkFail(HANDLE));
  socket.uncork();
  await waitFor(() => received.lines.includes('fail'), { timeoutMs: 5000, message: 'the answer' });
  // 2/3 was superseded by 3/3: b, which followed it, went out at once; c waited behind 3/3.
  assert.deepEqual(received.lines, ['status 1/3', 'data a', 'data b', 'status 3/3', 'warning c', 'fail']);
});

test('ProgressThrottle.discard should drop what is held, keep no timer and resume a paused reader', async (t) => {
  const { socket, peer, received } = await socketPair(t);
  const progressReader = reader();
  const throttle = new ProgressThrottle(socket, HANDLE, progressReader, () => true);
  const before = timers();
  throttle.add({ kind: 'status', numerator: 1, denominator: 2 });
  throttle.add({ kind: 'status', numerator: 2, denominator: 2 });
  // Behind the held status, more than the backlog allows: the reader is paused.
  throttle.add({ kind: 'data', data: Buffer.alloc(PROGRESS_BACKLOG_BYTES, 0x61) });
  assert.equal(progressReader.paused, true);
  throttle.discard();
  assert.equal(progressReader.paused, false, 'resumed: the attempt must be able to end');
  assert.equal(timers(), before, 'no timer left to send anything later');
  socket.write(encodeWorkFail(HANDLE));
  await waitFor(() => received.lines.includes('fail'), { timeoutMs: 5000, message: 'the marker' });
  assert.deepEqual(received.lines, ['status 1/2', 'fail']);
  peer.destroy();
});

test('ProgressThrottle.discard should write the lines already sent when the socket is destroyed in the same tick', async (t) => {
  const { socket, peer, received } = await socketPair(t);
  const closed = new Promise<void>((resolve) => peer.once('close', () => resolve()));
  const throttle = new ProgressThrottle(socket, HANDLE, reader(), () => true);
  throttle.add({ kind: 'status', numerator: 1, denominator: 2 });
  throttle.add({ kind: 'data', data: Buffer.from('partial') });
  throttle.add({ kind: 'status', numerator: 2, denominator: 2 });
  // A hand-back: the connection drops its socket right away.
  throttle.discard();
  socket.destroy();
  await closed;
  assert.deepEqual(received.lines, ['status 1/2', 'data partial']);
});

test('ProgressThrottle should not write a held status once the socket no longer holds the job', async (t) => {
  const { socket, received } = await socketPair(t);
  let held = true;
  const throttle = new ProgressThrottle(socket, HANDLE, reader(), () => held);
  throttle.add({ kind: 'status', numerator: 1, denominator: 2 });
  throttle.add({ kind: 'status', numerator: 2, denominator: 2 });
  held = false;
  assert.equal(throttle.statusHeld, true);
  await waitFor(() => !throttle.statusHeld, { timeoutMs: 5000, message: 'the status timer to fire' });
  socket.write(encodeWorkFail(HANDLE));
  await waitFor(() => received.lines.includes('fail'), { timeoutMs: 5000, message: 'the marker' });
  assert.deepEqual(received.lines, ['status 1/2', 'fail']);
});

test('ProgressThrottle should pause its reader while the socket is behind and resume it once drained, losing nothing', async (t) => {
  const { socket, peer, received } = await socketPair(t);
  const progressReader = reader();
  const throttle = new ProgressThrottle(socket, HANDLE, progressReader, () => true);
  // gearmand reads nothing: the kernel's buffers fill, then the socket's own.
  peer.pause();
  const line = Buffer.alloc(16 * 1024, 0x62);
  let lines = 0;
  while (!progressReader.paused && lines < 100_000) {
    throttle.add({ kind: 'data', data: line });
    lines++;
  }
  assert.equal(progressReader.paused, true, `paused after ${lines} lines`);
  assert.ok(socket.writableLength <= PROGRESS_BACKLOG_BYTES + line.length + 64, `${socket.writableLength} bytes unsent when paused`);
  peer.resume();
  await waitFor(() => !progressReader.paused, { timeoutMs: 10_000, message: 'the reader to be resumed' });
  assert.equal(progressReader.resumes, 1);
  await waitFor(() => received.lines.length === lines, { timeoutMs: 10_000, message: `${lines} data packets` });
  assert.ok(received.lines.every((l) => l === `data ${line.toString()}`));
  throttle.finish();
});
