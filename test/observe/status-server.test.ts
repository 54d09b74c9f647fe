import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { LINE_TOO_LONG, MAX_CONNECTIONS, SERVER_BUSY, StatusServer, UNRECOGNIZED } from '../../src/observe/status-server.js';
import type { StatusSource } from '../../src/observe/status-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { memoryLogger } from '../helpers/memory-logger.js';

const THREADS = '1-1\tRegular\t0\tWaiting for work\r\n1-2\tRegular\t1\tjob_handle=H:x:1 job_unique=u\r\n';

function source(overrides: Partial<StatusSource> = {}): StatusSource {
  return {
    threads: () => Promise.resolve(THREADS),
    counters: () => Promise.resolve('reloads: 0\r\n'),
    gauges: () => Promise.resolve('pools: 1\r\n'),
    ...overrides,
  };
}

async function startServer(t: import('node:test').TestContext, src: StatusSource = source(), requestTimeoutMs = 300): Promise<{ server: StatusServer; port: number }> {
  const { logger } = memoryLogger();
  const server = new StatusServer({ host: '127.0.0.1', port: 0, source: src, logger, requestTimeoutMs });
  const { port } = await server.listen();
  t.after(() => server.close());
  return { server, port };
}

/** Sends `chunks` (optionally half-closing), returns everything read until the server closes. */
function exchange(port: number, chunks: Array<string | Buffer>, options: { end?: boolean } = {}): Promise<{ text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (d) => received.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve({ text: Buffer.concat(received).toString('latin1'), ms: Date.now() - started }));
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
      if (options.end === true) socket.end();
    });
  });
}

test('StatusServer should answer threads with \\r\\n, \\n or \\r endings, then close', async (t) => {
  const { port } = await startServer(t);
  for (const line of ['threads\r\n', 'threads\n', 'threads\r', '  threads \t\n']) {
    const { text } = await exchange(port, [line]);
    assert.equal(text, THREADS, JSON.stringify(line));
  }
});

test('StatusServer should answer a command split across packets and one ended by the client closing its side', async (t) => {
  const { port } = await startServer(t);
  assert.equal((await exchange(port, ['thr', 'ea', 'ds\n'])).text, THREADS);
  assert.equal((await exchange(port, ['threads'], { end: true })).text, THREADS);
});

test('StatusServer should route counters and gauges', async (t) => {
  const { port } = await startServer(t);
  assert.equal((await exchange(port, ['counters\n'])).text, 'reloads: 0\r\n');
  assert.equal((await exchange(port, ['gauges\r\n'])).text, 'pools: 1\r\n');
});

test('StatusServer should refuse unknown commands, garbage and empty lines', async (t) => {
  const { port } = await startServer(t);
  for (const chunk of ['THREADS\n', 'threads now\n', 'stats\n', '\n', Buffer.from([0, 0xff, 0xfe, 0x80, 0x0a]), Buffer.from('\u00e9\u00e8\n')]) {
    assert.equal((await exchange(port, [chunk])).text, UNRECOGNIZED, JSON.stringify(chunk.toString()));
  }
});

test('StatusServer should answer only the first command of a connection', async (t) => {
  const { port } = await startServer(t);
  assert.equal((await exchange(port, ['counters\nthreads\ngauges\n'])).text, 'reloads: 0\r\n');
});

test('StatusServer should refuse a line over 1 KiB and stay up', async (t) => {
  const { port } = await startServer(t);
  assert.equal((await exchange(port, ['x'.repeat(1025)])).text, LINE_TOO_LONG);
  assert.equal((await exchange(port, ['a'.repeat(600), 'b'.repeat(600), '\n'])).text, LINE_TOO_LONG);
  // Exactly 1024 bytes before the line end is still a (unknown) command.
  assert.equal((await exchange(port, [`${'y'.repeat(1024)}\n`])).text, UNRECOGNIZED);
  assert.equal((await exchange(port, ['threads\n'])).text, THREADS);
});

test('StatusServer should close an idle client without a reply', async (t) => {
  const { port } = await startServer(t, source(), 200);
  const silent = await exchange(port, []);
  assert.equal(silent.text, '');
  assert.ok(silent.ms >= 150 && silent.ms < 3000, `closed after ${silent.ms} ms`);
  const partial = await exchange(port, ['thre']);
  assert.equal(partial.text, '');
  assert.equal((await exchange(port, ['threads\n'])).text, THREADS);
});

/** A connection that sends `first` and then holds its place; `text` is what it received, `closed` whether the server let go of it. */
function holdPlace(t: import('node:test').TestContext, port: number, first: string, options: { allowHalfOpen?: boolean } = {}): { socket: net.Socket; text: () => string; closed: () => boolean; closedAt: Promise<number> } {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.allowHalfOpen ?? false });
  let text = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  socket.on('error', () => {});
  socket.on('connect', () => socket.write(first));
  const closedAt = new Promise<number>((resolve) => socket.on('close', () => {
    closed = true;
    resolve(Date.now());
  }));
  t.after(() => socket.destroy());
  return { socket, text: () => text, closed: () => closed, closedAt };
}

test('StatusServer should close a client that trickles its line byte by byte at the deadline from connecting', async (t) => {
  const { port } = await startServer(t, source(), 300);
  const client = holdPlace(t, port, 't');
  const started = Date.now();
  // One byte every 100 ms: an idle timer of 300 ms would never fire.
  const rest = 'hreads and then some more bytes that never end the line';
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < rest.length && !client.closed()) client.socket.write(rest[sent++] as string);
  }, 100);
  t.after(() => clearInterval(timer));
  const closedAt = await Promise.race([client.closedAt, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 3000))]);
  clearInterval(timer);
  assert.notEqual(closedAt, -1, 'the trickling client still held its place after 3 s');
  assert.ok(closedAt - started < 1500, `closed after ${closedAt - started} ms`);
  assert.equal(client.text(), '');
});

test('StatusServer should let a real client into a full server by displacing the oldest client that has not sent its line', async (t) => {
  const { port, server } = await startServer(t, source(), 30_000);
  const slow = Array.from({ length: MAX_CONNECTIONS }, () => holdPlace(t, port, 'thr'));
  await waitFor(() => server.connections === MAX_CONNECTIONS, { timeoutMs: 5000, message: `${MAX_CONNECTIONS} slow clients to connect` });
  const real = await exchange(port, ['threads\n']);
  assert.equal(real.text, THREADS);
  assert.ok(real.ms < 1000, `answered after ${real.ms} ms`);
  // The oldest slow client gave its place up, politely; the others still wait.
  await waitFor(() => slow[0]?.closed(), { timeoutMs: 2000, message: 'the oldest slow client to be closed' });
  assert.equal(slow[0]?.text(), SERVER_BUSY);
  assert.equal(slow.filter((client) => client.closed()).length, 1);
});

test('StatusServer should tell a newcomer the server is busy when every place is being answered, then serve again', async (t) => {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  let asked = 0;
  const { port } = await startServer(
    t,
    source({
      threads: async () => {
        asked++;
        await gate;
        return THREADS;
      },
    }),
    30_000,
  );
  const waiting = Array.from({ length: MAX_CONNECTIONS }, () => holdPlace(t, port, 'threads\n'));
  await waitFor(() => asked === MAX_CONNECTIONS, { timeoutMs: 5000, message: `${MAX_CONNECTIONS} clients to be answering` });
  const refused = await exchange(port, ['counters\n']);
  assert.equal(refused.text, SERVER_BUSY);
  release();
  await Promise.all(waiting.map((client) => client.closedAt));
  assert.ok(waiting.every((client) => client.text() === THREADS));
  // The server side of those connections closes a moment after the clients see theirs close.
  await waitFor(async () => (await exchange(port, ['counters\n'])).text === 'reloads: 0\r\n', { timeoutMs: 5000, message: 'a newcomer to be served once the places are free' });
});

test('StatusServer should drop a client that neither reads nor closes after its reply, at the deadline', async (t) => {
  const { port } = await startServer(t, source(), 300);
  // allowHalfOpen: the client keeps its side open after the server's FIN, as a hostile one would.
  const client = holdPlace(t, port, 'threads\n', { allowHalfOpen: true });
  const started = Date.now();
  // A half-open client learns that the server let go only when it writes: keep poking.
  const poke = setInterval(() => {
    if (client.text() !== '' && !client.socket.destroyed) client.socket.write('x');
  }, 50);
  t.after(() => clearInterval(poke));
  const closedAt = await Promise.race([client.closedAt, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 3000))]);
  assert.notEqual(closedAt, -1, 'the server kept the half-closed connection for 3 s');
  assert.ok(closedAt - started < 1500, `closed after ${closedAt - started} ms`);
  assert.equal(client.text(), THREADS);
});

test('StatusServer should survive clients that reset mid-reply and a source that throws', async (t) => {
  let release: () => void = () => {};
  const slow = new Promise<void>((resolve) => (release = resolve));
  const { port } = await startServer(
    t,
    source({
      threads: async () => {
        await slow;
        return THREADS;
      },
      gauges: () => Promise.reject(new Error('boom')),
    }),
  );
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.on('connect', resolve));
  socket.write('threads\n');
  await new Promise((resolve) => setTimeout(resolve, 50));
  socket.resetAndDestroy();
  release();
  assert.equal((await exchange(port, ['gauges\n'])).text, 'Error: internal error\r\n');
  assert.equal((await exchange(port, ['threads\n'])).text, THREADS);
});

test('StatusServer.listen should reject when the port is taken, and close should be idempotent', async (t) => {
  const { port, server } = await startServer(t);
  const { logger } = memoryLogger();
  const second = new StatusServer({ host: '127.0.0.1', port, source: source(), logger, requestTimeoutMs: 100 });
  await assert.rejects(second.listen(), /EADDRINUSE/);
  await second.close();
  await Promise.all([server.close(), server.close()]);
  await assert.rejects(exchange(port, ['threads\n']), /ECONNREFUSED/);
});
