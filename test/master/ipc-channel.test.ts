import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { defaultPoolExtensions } from '../../src/config/types.js';
import { IpcChannel, isChildMessage } from '../../src/master/ipc-channel.js';
import { FAKE_CHILD } from './support.js';

/** An endpoint whose sent messages land in `sent`; `reply` plays the child. */
class FakeEndpoint extends EventEmitter {
  sent: Array<Record<string, unknown>> = [];
  failSend: Error | null = null;
  throwSend: Error | null = null;
  send(message: unknown, callback?: (error: Error | null) => void): boolean {
    if (this.throwSend !== null) throw this.throwSend;
    this.sent.push(message as Record<string, unknown>);
    const error = this.failSend;
    setImmediate(() => callback?.(error));
    return true;
  }
  reply(message: unknown): void {
    this.emit('message', message);
  }
}

test('IpcChannel.request should resolve with the reply that acks its seq', async () => {
  const endpoint = new FakeEndpoint();
  const channel = new IpcChannel(endpoint, 'child test');
  const first = channel.request({ type: 'status' }, 1000);
  const second = channel.request({ type: 'status' }, 1000);
  const [a, b] = endpoint.sent;
  assert.equal(a?.type, 'status');
  assert.notEqual(a?.seq, b?.seq);
  endpoint.reply({ type: 'status-reply', ack: b?.seq, status: { pool: 'b', pid: 2, slots: [], counters: {} } });
  endpoint.reply({ type: 'status-reply', ack: a?.seq, status: { pool: 'a', pid: 1, slots: [], counters: {} } });
  const [ra, rb] = await Promise.all([first, second]);
  assert.equal(ra.type === 'status-reply' && ra.status.pool, 'a');
  assert.equal(rb.type === 'status-reply' && rb.status.pool, 'b');
  assert.equal(channel.pendingCount, 0);
});

test('IpcChannel.request should reject with DS_IPC when no reply comes in time, and drop the late reply', async () => {
  const endpoint = new FakeEndpoint();
  const channel = new IpcChannel(endpoint, 'child slow');
  await assert.rejects(channel.request({ type: 'status' }, 30), (error: Error & { code?: string }) => {
    assert.equal(error.code, ErrorCode.IPC);
    assert.match(error.message, /child slow: no reply to status \(seq 1\) within 30 ms/);
    return true;
  });
  // A reply after the timeout is ignored, not mistaken for the next request's.
  const next = channel.request({ type: 'status' }, 1000);
  endpoint.reply({ type: 'status-reply', ack: 1, status: { pool: 'late', pid: 1, slots: [], counters: {} } });
  endpoint.reply({ type: 'status-reply', ack: 2, status: { pool: 'right', pid: 1, slots: [], counters: {} } });
  const reply = await next;
  assert.equal(reply.type === 'status-reply' && reply.status.pool, 'right');
});

test('IpcChannel.request should reject when the send fails or throws', async () => {
  const endpoint = new FakeEndpoint();
  const channel = new IpcChannel(endpoint, 'child x');
  endpoint.failSend = new Error('EPIPE');
  await assert.rejects(channel.request({ type: 'status' }, 1000), /cannot send status: EPIPE/);
  endpoint.failSend = null;
  endpoint.throwSend = new Error('Channel closed');
  await assert.rejects(channel.request({ type: 'status' }, 1000), /cannot send status: Channel closed/);
  assert.equal(channel.pendingCount, 0);
});

test('IpcChannel.close should reject pending requests, refuse new ones and be idempotent', async () => {
  const endpoint = new FakeEndpoint();
  const channel = new IpcChannel(endpoint, 'child y');
  const pending = channel.request({ type: 'shutdown', mode: 'graceful', deadlineMs: 10 }, 10_000);
  channel.close('child exited');
  channel.close('again');
  await assert.rejects(pending, /shutdown \(seq 1\) abandoned: child exited/);
  await assert.rejects(channel.request({ type: 'status' }, 1000), /cannot send status: child exited/);
  assert.equal(endpoint.listenerCount('message'), 0);
});

test('IpcChannel should pass log notices on and report malformed messages without throwing', () => {
  const endpoint = new FakeEndpoint();
  const channel = new IpcChannel(endpoint, 'child z');
  const notices: unknown[] = [];
  const invalid: unknown[] = [];
  channel.onNotice((n) => notices.push(n));
  channel.onInvalid((m) => invalid.push(m));
  endpoint.reply({ type: 'log', record: { level: 30, msg: 'hi' } });
  for (const garbage of [null, 'text', 42, { type: 'ready' }, { type: 'nope', ack: 1 }, { type: 'log' }, { type: 'ready', ack: 'x' }]) endpoint.reply(garbage);
  endpoint.reply({ type: 'ready', ack: 99 }); // acks nothing pending: dropped quietly
  assert.equal(notices.length, 1);
  assert.equal(invalid.length, 7);
});

test('isChildMessage should accept every reply type of the protocol', () => {
  for (const type of ['ready', 'init-failed', 'reconfigured', 'reconfigure-failed', 'status-reply', 'files-reopened', 'stopped']) {
    assert.equal(isChildMessage({ type, ack: 1 }), true, type);
  }
  assert.equal(isChildMessage({ type: 'log', record: {} }), true);
  assert.equal(isChildMessage({ type: 'hello' }), true);
  assert.equal(isChildMessage({ type: 'heartbeat' }), true);
});

test('IpcChannel should take a notice that carries an ack for a notice, not for the reply', async () => {
  const endpoint = new FakeEndpoint();
  const channel = new IpcChannel(endpoint, 'child test');
  const notices: unknown[] = [];
  channel.onNotice((n) => notices.push(n));
  const pending = channel.request({ type: 'status' }, 1000);
  const seq = endpoint.sent[0]?.seq;
  endpoint.reply({ type: 'heartbeat', ack: seq });
  assert.equal(notices.length, 1);
  assert.equal(channel.pendingCount, 1, 'the request still waits for its status-reply');
  endpoint.reply({ type: 'status-reply', ack: seq, status: { pool: 'a', pid: 1, slots: [], counters: {} } });
  assert.equal((await pending).type, 'status-reply');
});

test('IpcChannel should talk to a real forked process', async (t) => {
  const child = fork(FAKE_CHILD, [], { env: { ...process.env, DRIVESHAFT_POOL: 'okipc' }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.after(() => child.kill('SIGKILL'));
  const channel = new IpcChannel(child, 'child okipc');
  const notices: unknown[] = [];
  channel.onNotice((n) => notices.push(n));
  const settings = { pool: { name: 'okipc', jobProcessingUri: 'http://x/', workerCount: 3, jobsList: ['A'], requestFormat: 'json' as const, maxRunningTimeMs: 1000, headers: {}, ...defaultPoolExtensions() }, servers: [], loopTimeoutMs: 500, logLevel: 'info' };
  const ready = await channel.request({ type: 'init', settings }, 5000);
  assert.equal(ready.type, 'ready');
  const status = await channel.request({ type: 'status' }, 5000);
  assert.equal(status.type === 'status-reply' && status.status.slots.length, 3);
  // The child's hello (sent once it listens) and the log record it sends on init.
  assert.deepEqual(notices.map((n) => (n as { type: string }).type).sort(), ['hello', 'log']);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stopped = await channel.request({ type: 'shutdown', mode: 'hard', deadlineMs: 0 }, 5000);
  assert.equal(stopped.type, 'stopped');
  assert.equal(await exited, 0);
  channel.close('exited');
});

