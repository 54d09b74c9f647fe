import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { zeroCounters } from '../../src/ipc/counters.js';
import { Exporter, MAX_CONNECTIONS } from '../../src/observe/exporter.js';
import type { ExporterSource, ExporterOptions } from '../../src/observe/exporter.js';
import type { Observation } from '../../src/observe/observation.js';
import { EXPOSITION_CONTENT_TYPE } from '../../src/observe/prometheus.js';
import { waitFor } from '../helpers/wait-for.js';
import { pool, server } from '../master/support.js';
import { memoryLogger } from '../helpers/memory-logger.js';

function observation(connected: boolean): Observation {
  return {
    takenAt: Date.now(),
    version: 'driveshaft test',
    pid: process.pid,
    state: 'running',
    startedAt: Date.now() - 5000,
    configFile: '/tmp/jobs.json',
    configLoadedAt: Date.now() - 5000,
    servers: [server()],
    pools: { Regular: pool('Regular') },
    poolNames: ['Regular'],
    children: [
      {
        pool: 'Regular',
        state: 'running',
        pid: 42,
        restarts: 0,
        failReason: null,
        retiring: false,
        status: {
          pool: 'Regular',
          pid: 42,
          slots: [{ id: '42-1', stopping: false, job: null, connectedServers: connected ? 1 : 0 }],
          counters: { ...zeroCounters(), jobs_completed: 5 },
        },
        statusError: null,
      },
    ],
    totals: new Map(),
    reloads: { ok: 0, failed: 0 },
    childRestarts: 0,
  };
}

interface FakeSource extends ExporterSource {
  calls: number;
  connected: boolean;
  fail: boolean;
  /** While set, every snapshot waits for it. */
  gate: Promise<void> | null;
}

async function start(t: TestContext, extra: Partial<ExporterOptions> = {}): Promise<{ exporter: Exporter; source: FakeSource; url: string; port: number; records: ReturnType<typeof memoryLogger>['records'] }> {
  const source: FakeSource = {
    calls: 0,
    connected: true,
    fail: false,
    gate: null,
    async observe() {
      this.calls++;
      if (this.gate !== null) await this.gate;
      if (this.fail) throw new Error('the children are on fire');
      return observation(this.connected);
    },
    gearmandScrapes: () => [],
  };
  const { logger, records } = memoryLogger();
  const exporter = new Exporter({ host: '127.0.0.1', port: 0, source, logger, ...extra });
  t.after(() => exporter.close());
  const address = await exporter.listen();
  return { exporter, source, url: `http://127.0.0.1:${address.port}`, port: address.port, records };
}

/** Sends raw bytes, returns whatever comes back until the server closes (or the timeout). */
function raw(port: number, bytes: string, timeoutMs = 5000): Promise<{ text: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    socket.on('error', () => {});
    socket.on('close', () => resolve({ text, closedAfterMs: Date.now() - started }));
    socket.on('connect', () => {
      if (bytes !== '') socket.write(bytes);
    });
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${timeoutMs} ms`));
    }, timeoutMs).unref();
  });
}

test('Exporter should serve /healthz without asking the children, and /metrics, /status and / with their content types', async (t) => {
  const { source, url } = await start(t);
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), 'ok\n');
  assert.equal(source.calls, 0);

  const metrics = await fetch(`${url}/metrics`);
  assert.equal(metrics.status, 200);
  assert.equal(metrics.headers.get('content-type'), EXPOSITION_CONTENT_TYPE);
  assert.equal(metrics.headers.get('cache-control'), 'no-store');
  assert.match(await metrics.text(), /^driveshaft_slots\{pool="Regular",state="idle"\} 1$/m);

  const status = await fetch(`${url}/status?pretty=1`);
  assert.equal(status.status, 200);
  assert.equal(status.headers.get('content-type'), 'application/json; charset=utf-8');
  const doc = (await status.json()) as { pools: Array<{ name: string; slots: Array<{ id: string }> }> };
  assert.deepEqual(doc.pools.map((p) => [p.name, p.slots.map((s) => s.id)]), [['Regular', ['42-1']]]);

  const page = await fetch(`${url}/`);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'sha256-[A-Za-z0-9+/=]+'/);
  const html = await page.text();
  assert.match(html, /<title>driveshaft status<\/title>/);
  assert.ok(!/(src|href)=["'](?!data:)/.test(html), 'no external resources');
});

test('Exporter should answer /readyz 200 or 503 with the reason naming the pool', async (t) => {
  const { source, url } = await start(t, { cacheMs: 0 });
  const ready = await fetch(`${url}/readyz`);
  assert.equal(ready.status, 200);
  assert.equal(await ready.text(), 'ready\n');
  source.connected = false;
  const notReady = await fetch(`${url}/readyz`);
  assert.equal(notReady.status, 503);
  assert.match(await notReady.text(), /^not ready\nRegular: no slot is registered with any gearmand/);
});

test('Exporter should answer unknown paths 404, methods other than GET and HEAD 405, and HEAD without a body', async (t) => {
  const { url } = await start(t);
  const missing = await fetch(`${url}/nope`);
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /not found: \/nope/);
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const response = await fetch(`${url}/metrics`, { method, body: method === 'POST' || method === 'PUT' ? 'x'.repeat(100_000) : undefined });
    assert.equal(response.status, 405, method);
    assert.equal(response.headers.get('allow'), 'GET, HEAD');
    await response.arrayBuffer();
  }
  const head = await fetch(`${url}/healthz`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
});

test('Exporter should share one poll of the children between requests within cacheMs', async (t) => {
  const { source, url } = await start(t, { cacheMs: 60_000 });
  await Promise.all([fetch(`${url}/metrics`), fetch(`${url}/status`), fetch(`${url}/readyz`)].map((p) => p.then((r) => r.arrayBuffer())));
  await (await fetch(`${url}/metrics`)).arrayBuffer();
  assert.equal(source.calls, 1);
});

test('Exporter should answer 500 when the snapshot fails, log it, and serve the next request', async (t) => {
  const { source, url, records } = await start(t, { cacheMs: 60_000 });
  source.fail = true;
  const failed = await fetch(`${url}/metrics`);
  assert.equal(failed.status, 500);
  assert.equal(await failed.text(), 'internal error\n');
  assert.ok(records.some((r) => r.component === 'exporter' && /the children are on fire/.test(r.msg)));
  source.fail = false;
  // A failed snapshot is not cached.
  assert.equal((await fetch(`${url}/metrics`)).status, 200);
});

test('Exporter should answer garbage with 400 and oversized headers with 431, and keep serving', async (t) => {
  const { port, url } = await start(t);
  const garbage = await raw(port, 'THIS IS NOT HTTP\r\n\r\n');
  assert.match(garbage.text, /^HTTP\/1\.1 400 Bad Request\r\n/);
  const binary = await raw(port, '\x00\x01\x02\xff\r\n\r\n');
  assert.match(binary.text, /^HTTP\/1\.1 400 /);
  const huge = await raw(port, `GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.match(huge.text, /^HTTP\/1\.1 431 /);
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
});

test('Exporter should close a client that never finishes its request head, and one that sends nothing', async (t) => {
  const { port, url } = await start(t, { headersTimeoutMs: 300, requestTimeoutMs: 300, idleTimeoutMs: 600 });
  const slow = await raw(port, 'GET /metrics HTTP/1.1\r\nHost: localhost\r\n', 5000);
  assert.ok(slow.closedAfterMs < 3000, `closed after ${slow.closedAfterMs} ms`);
  const silent = await raw(port, '', 5000);
  assert.ok(silent.closedAfterMs < 3000, `closed after ${silent.closedAfterMs} ms`);
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
});

/** Connections that each send `first` and then hold their place; tells how many the server has closed. */
function holdPlaces(t: TestContext, port: number, count: number, first: string): { closed: () => number; texts: () => string[] } {
  let closed = 0;
  const texts: string[] = [];
  for (let i = 0; i < count; i++) {
    const socket = net.connect(port, '127.0.0.1');
    texts.push('');
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (texts[i] += d));
    socket.on('error', () => {});
    socket.on('connect', () => socket.write(first));
    socket.on('close', () => closed++);
    t.after(() => socket.destroy());
  }
  return { closed: () => closed, texts: () => texts };
}

test('Exporter should close a client that trickles its request head byte by byte at the deadline from connecting', async (t) => {
  const { port } = await start(t, { headersTimeoutMs: 300, requestTimeoutMs: 300, idleTimeoutMs: 600 });
  const started = Date.now();
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const head = 'GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < head.length && !socket.destroyed) socket.write(head[sent++] as string);
  }, 50);
  t.after(() => clearInterval(timer));
  const closedAt = await new Promise<number>((resolve) => {
    socket.on('close', () => resolve(Date.now()));
    setTimeout(() => resolve(-1), 3000).unref();
  });
  clearInterval(timer);
  socket.destroy();
  assert.notEqual(closedAt, -1, 'the trickling client still held its connection after 3 s');
  assert.ok(closedAt - started < 2000, `closed after ${closedAt - started} ms`);
});

test('Exporter should let a real client into a full listener by displacing the oldest connection with no request being answered', async (t) => {
  const { port, exporter } = await start(t, { headersTimeoutMs: 30_000, requestTimeoutMs: 30_000, idleTimeoutMs: 30_000 });
  const slow = holdPlaces(t, port, MAX_CONNECTIONS, 'GET /metrics HTTP/1.1\r\n');
  await waitFor(() => exporter.clients === MAX_CONNECTIONS, { timeoutMs: 5000, message: `${MAX_CONNECTIONS} slow clients to hold a place` });
  const before = exporter.requests;
  const real = await raw(port, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  assert.match(real.text, /^HTTP\/1\.1 200 /);
  assert.ok(real.closedAfterMs < 1000, `answered after ${real.closedAfterMs} ms`);
  assert.equal(exporter.requests, before + 1);
  await waitFor(() => slow.closed() === 1, { timeoutMs: 2000, message: 'exactly one slow client to give its place up' });
});

test('Exporter should answer a newcomer 503 with Retry-After when every place has a request being answered, then serve again', async (t) => {
  const { port, source, url, exporter } = await start(t);
  let release: () => void = () => {};
  source.gate = new Promise<void>((resolve) => (release = resolve));
  // Every place holds a request waiting on the (shared) snapshot.
  const waiting = holdPlaces(t, port, MAX_CONNECTIONS, 'GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await waitFor(() => exporter.requests === MAX_CONNECTIONS, { timeoutMs: 5000, message: `${MAX_CONNECTIONS} requests to be in flight` });
  const refused = await raw(port, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  assert.match(refused.text, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
  assert.match(refused.text, /\r\nRetry-After: 1\r\n/);
  assert.match(refused.text, /\r\n\r\nserver busy\n$/);
  source.gate = null;
  release();
  await waitFor(() => waiting.texts().every((text) => text.startsWith('HTTP/1.1 200 ')), { timeoutMs: 5000, message: 'the held requests to be answered' });
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
});

test('Exporter.listen should reject when the port is taken, and close should be idempotent', async (t) => {
  const { port } = await start(t);
  const { logger } = memoryLogger();
  const second = new Exporter({ host: '127.0.0.1', port, source: { observe: () => Promise.reject(new Error('unused')), gearmandScrapes: () => [] }, logger });
  await assert.rejects(second.listen(), (error: NodeJS.ErrnoException) => error.code === 'EADDRINUSE');
  await second.close();
  await second.close();
});
